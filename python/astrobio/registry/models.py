"""The registry's tables (SQLAlchemy 2 typed ORM). Schema changes go through an alembic
migration in `migrations/versions/` in the same change; `_db.open_engine` upgrades to head."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = ["VERSION_TABLE", "Base", "Dataset", "Version", "QualityReport", "TrainingRun", "ApiKey", "Job", "STATUSES", "utcnow"]

STATUSES = ("collecting", "ready", "failed", "retired")
#: alembic's version table for the registry (not the default name: optuna shares the database)
VERSION_TABLE = "astrobio_registry_version"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    versions: Mapped[list["Version"]] = relationship(back_populates="dataset", order_by="Version.number")


class Version(Base):
    """One immutable version `name@vN`. `number` is allocated inside the registering
    transaction under the unique constraint, so concurrent registrations never share one."""

    __tablename__ = "versions"
    __table_args__ = (UniqueConstraint("dataset_id", "number", name="uq_versions_dataset_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)
    uri: Mapped[str] = mapped_column(Text, default="")
    digest: Mapped[str] = mapped_column(String(80), default="")
    kind: Mapped[str] = mapped_column(String(16), default="")
    splits: Mapped[dict[str, Any]] = mapped_column(default=dict)       # split -> {runs, samples}
    provenance: Mapped[dict[str, Any]] = mapped_column(default=dict)   # from the store's manifest
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)      # manifest summary for load
    error: Mapped[str] = mapped_column(Text, default="")               # why failed / last failed check
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    dataset: Mapped[Dataset] = relationship(back_populates="versions")
    quality: Mapped["QualityReport | None"] = relationship(back_populates="version", cascade="all, delete-orphan")
    runs: Mapped[list["TrainingRun"]] = relationship(back_populates="version", order_by="TrainingRun.id")

    @property
    def ref(self) -> str:
        return f"{self.dataset.name}@v{self.number}"


class QualityReport(Base):
    __tablename__ = "quality_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id", ondelete="CASCADE"), unique=True)
    success: Mapped[bool] = mapped_column()
    report: Mapped[dict[str, Any]] = mapped_column()
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    version: Mapped[Version] = relationship(back_populates="quality")


class TrainingRun(Base):
    """Lineage: a training run and the registered version it trained on."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id", ondelete="CASCADE"), index=True)
    run_dir: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(64), default="")
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    version: Mapped[Version] = relationship(back_populates="runs")


class ApiKey(Base):
    """An API key: only the sha256 of its secret is stored; the key is shown once at creation."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(64))                    # "read" or "read,write"
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class Job(Base):
    """A background collect job; kept in the database so its state survives the server."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    dataset: Mapped[str] = mapped_column(String(128))
    version_number: Mapped[int | None] = mapped_column(Integer, default=None)
    state: Mapped[str] = mapped_column(String(16))                     # queued, running, succeeded, failed
    progress: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str] = mapped_column(Text, default="")
    request: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
