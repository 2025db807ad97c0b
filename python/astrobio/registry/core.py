"""The registry: datasets, immutable versions `name@vN`, quality reports and lineage records.

A version starts `collecting` (its number allocated under the database's lock and unique
constraint), becomes `ready` only after its store passed the full scan and the digest check,
and `failed` otherwise; `retired` hides it from default resolution but keeps its record.
Every method opens its own short session and returns plain dicts (JSON-ready).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.orm import Session, selectinload

from ..errors import AstrobioError, ConfigError, DataNotFoundError, first_line
from ..stores.location import store_location
from . import quality as _quality
from ._db import open_engine, read_session, write_session
from ._scan import digest_check, full_check, read_manifest
from .models import Dataset, QualityReport, TrainingRun, Version, utcnow

__all__ = ["Registry", "open_registry", "parse_ref", "NAME_PATTERN"]

log = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_REF = re.compile(r"^(?P<name>[^@]+)(?:@v?(?P<number>[0-9]+))?$")
_ALLOC_ATTEMPTS = 8


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ConfigError(f"dataset name {name!r} must match {NAME_PATTERN.pattern}")
    return name


def parse_ref(ref: str) -> tuple[str, int | None]:
    """'name@v3' -> ('name', 3); 'name' -> ('name', None) (the newest ready version)."""
    m = _REF.match(ref.strip()) if isinstance(ref, str) else None
    if m is None:
        raise ConfigError(f"dataset reference {ref!r} must look like NAME@vN (or NAME for the newest ready version)")
    return check_name(m["name"]), (int(m["number"]) if m["number"] else None)


def _not_found(what: str) -> DataNotFoundError:
    return DataNotFoundError(what, hint="List what is registered with `astrobio registry list`")


def _iso(t: dt.datetime | None) -> str | None:
    if t is None:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)).isoformat(timespec="seconds")


def version_dict(v: Version, runs: bool = False) -> dict[str, Any]:
    out = {"ref": f"{v.dataset.name}@v{v.number}", "dataset": v.dataset.name, "version": v.number, "status": v.status,
           "kind": v.kind, "uri": v.uri, "digest": v.digest, "splits": v.splits, "provenance": v.provenance,
           "error": v.error, "created": _iso(v.created), "updated": _iso(v.updated),
           "quality_success": v.quality.success if v.quality is not None else None}
    if runs:
        out["runs"] = [{"run_dir": r.run_dir, "model": r.model, "metrics": r.metrics, "created": _iso(r.created)} for r in v.runs]
    return out


class Registry:
    """A handle on the registry database (`url`, else $ASTROBIO_REGISTRY_URL, else SQLite in
    the data home). Cheap to create: engines are cached per process."""

    def __init__(self, url: str | None = None) -> None:
        self.engine = open_engine(url)

    # --- versions: allocation and state ---------------------------------------------------

    def begin_version(self, name: str, *, uri: str = "", description: str = "") -> int:
        """A new `collecting` version of dataset `name` (created if new); returns its number.
        Numbers are allocated under the write lock (SQLite BEGIN IMMEDIATE, PostgreSQL
        SELECT ... FOR UPDATE on the dataset row) and the unique constraint; a collision
        (two first versions of a new dataset on PostgreSQL) is retried."""
        check_name(name)
        for _ in range(_ALLOC_ATTEMPTS):
            try:
                with write_session(self.engine) as s:
                    ds = s.scalars(select(Dataset).where(Dataset.name == name).with_for_update()).one_or_none()
                    if ds is None:
                        ds = Dataset(name=name, description=description)
                        s.add(ds)
                        s.flush()
                    last = s.scalar(select(func.max(Version.number)).where(Version.dataset_id == ds.id)) or 0
                    v = Version(dataset_id=ds.id, number=last + 1, status="collecting", uri=uri, digest="", kind="",
                                splits={}, provenance={}, summary={}, error="")
                    s.add(v)
                    s.flush()
                    return v.number
            except DBIntegrityError:
                continue
        raise ConfigError(f"could not allocate a version number for {name!r} after {_ALLOC_ATTEMPTS} attempts (heavy contention)")

    def _get(self, s: Session, name: str, number: int | None, *, ready_only: bool = False) -> Version:
        q = (select(Version).join(Dataset).where(Dataset.name == name)
             .options(selectinload(Version.dataset), selectinload(Version.quality), selectinload(Version.runs)))
        if number is None:
            v = s.scalars(q.where(Version.status == "ready").order_by(Version.number.desc()).limit(1)).first()
            if v is None:
                raise _not_found(f"dataset {name!r} has no ready version")
            return v
        v = s.scalars(q.where(Version.number == number)).one_or_none()
        if v is None:
            raise _not_found(f"no version {name}@v{number}")
        if ready_only and v.status != "ready":
            raise DataNotFoundError(f"{name}@v{number} is {v.status}, not ready" + (f" ({v.error})" if v.error else ""),
                                    hint="Use a ready version (astrobio registry show NAME)")
        return v

    def finish_version(self, name: str, number: int, info: Any, report: dict[str, Any]) -> dict[str, Any]:
        """Record the checked store and its quality report; the version becomes `ready`."""
        with write_session(self.engine) as s:
            v = self._get(s, name, number)
            if v.status != "collecting":
                raise ConfigError(f"{name}@v{number} is {v.status}; only a collecting version can become ready")
            v.uri, v.digest, v.kind, v.splits = info.uri, info.digest, info.kind, info.splits
            v.provenance, v.summary, v.status, v.error = info.provenance, info.summary, "ready", ""
            s.add(QualityReport(version_id=v.id, success=bool(report["success"]), report=report))
            s.flush()
            s.refresh(v)
            return version_dict(v)

    def fail_version(self, name: str, number: int, error: str) -> None:
        with write_session(self.engine) as s:
            s.execute(update(Version).where(Version.number == number, Version.status == "collecting",
                                            Version.dataset_id == select(Dataset.id).where(Dataset.name == name).scalar_subquery())
                      .values(status="failed", error=error[:2000], updated=utcnow()))

    def fail_stale(self, before: dt.datetime) -> int:
        """Mark versions still `collecting` that started before `before` (a server that died
        mid-collect) as failed; returns how many."""
        with write_session(self.engine) as s:
            res = s.execute(update(Version).where(Version.status == "collecting", Version.created < before)
                            .values(status="failed", error="collect interrupted: the process running it stopped", updated=utcnow()))
            return int(res.rowcount or 0)

    def previous_stats(self, name: str, number: int) -> tuple[str, dict[str, Any]] | None:
        """(ref, per-variable statistics) of the newest ready version before `number`."""
        with read_session(self.engine) as s:
            v = s.scalars(select(Version).join(Dataset).where(Dataset.name == name, Version.number < number, Version.status.in_(("ready", "retired")))
                          .options(selectinload(Version.quality)).order_by(Version.number.desc()).limit(1)).first()
            if v is None or v.quality is None:
                return None
            return f"{name}@v{v.number}", dict(v.quality.report.get("variables", {}))

    def complete(self, name: str, number: int, path: Path | str, threshold: float = _quality.DRIFT_THRESHOLD) -> dict[str, Any]:
        """Full check + quality report of the store at `path` for the collecting version;
        `ready` on success, `failed` (and the error re-raised) otherwise."""
        try:
            info = full_check(path)
            report = _quality.build_report(info, ref=f"{name}@v{number}", previous=self.previous_stats(name, number), threshold=threshold)
            return self.finish_version(name, number, info, report)
        except BaseException as e:
            self.fail_version(name, number, f"{type(e).__name__}: {e}" if isinstance(e, AstrobioError) else first_line(e))
            raise

    def register(self, path: str | Path, name: str, *, description: str = "", if_changed: bool = False,
                 threshold: float = _quality.DRIFT_THRESHOLD) -> dict[str, Any]:
        """Register the store at `path` (a directory, or an s3:// URL: registered where it is,
        not copied) as the next version of `name` (full scan, digest check, quality report).
        `if_changed`: return the newest ready version instead when it already records this
        store with this digest (a rebuilt-but-unchanged store)."""
        where = store_location(path)
        path = where if isinstance(where, str) else where.resolve()
        check_name(name)
        if if_changed:
            digest = read_manifest(path).get("content_digest")
            with read_session(self.engine) as s:
                try:
                    latest = self._get(s, name, None)
                except DataNotFoundError:
                    latest = None
                if latest is not None and latest.digest == digest and latest.uri == str(path):
                    return version_dict(latest)
        number = self.begin_version(name, uri=str(path), description=description)
        return self.complete(name, number, path, threshold)

    def retire(self, ref: str) -> dict[str, Any]:
        name, number = parse_ref(ref)
        if number is None:
            raise ConfigError("retire needs an explicit version: NAME@vN")
        with write_session(self.engine) as s:
            v = self._get(s, name, number)
            if v.status == "collecting":
                raise ConfigError(f"{v.ref} is still collecting; retire it once it is ready or failed")
            v.status = "retired"
            s.flush()
            return version_dict(v)

    # --- reads ------------------------------------------------------------------------------

    def datasets(self) -> list[dict[str, Any]]:
        with read_session(self.engine) as s:
            rows = s.execute(select(Dataset.name, Dataset.description, Dataset.created, func.count(Version.id),
                                    func.max(Version.number).filter(Version.status == "ready"))
                             .outerjoin(Version).group_by(Dataset.id).order_by(Dataset.name)).all()
            return [{"name": n, "description": d, "created": _iso(c), "versions": int(k), "latest_ready": lr} for n, d, c, k, lr in rows]

    def dataset(self, name: str) -> dict[str, Any]:
        with read_session(self.engine) as s:
            ds = s.scalars(select(Dataset).where(Dataset.name == check_name(name))
                           .options(selectinload(Dataset.versions).selectinload(Version.quality))).one_or_none()
            if ds is None:
                raise _not_found(f"no dataset {name!r}")
            return {"name": ds.name, "description": ds.description, "created": _iso(ds.created),
                    "versions": [version_dict(v) for v in ds.versions]}

    def version(self, ref: str, *, runs: bool = True) -> dict[str, Any]:
        name, number = parse_ref(ref)
        with read_session(self.engine) as s:
            return version_dict(self._get(s, name, number), runs=runs)

    def quality(self, ref: str, *, live: bool = True) -> dict[str, Any]:
        """The version's quality report; with `live`, plus whether its store is still intact
        (manifest digest, cheap) and the last failed load check, so a damaged store shows why."""
        name, number = parse_ref(ref)
        with read_session(self.engine) as s:
            v = self._get(s, name, number)
            if v.quality is None:
                raise _not_found(f"{v.ref} has no quality report (status {v.status}{': ' + v.error if v.error else ''})")
            report, uri, digest, error = v.quality.report, v.uri, v.digest, v.error
        if not live:
            return report
        problem = error
        if not problem:
            try:
                recorded = read_manifest(store_location(uri)).get("content_digest")
                problem = "" if recorded == digest else f"store content digest is {recorded}, the registry records {digest}"
            except AstrobioError as e:
                problem = f"{type(e).__name__}: {e}"
        return _quality.with_live_check(report, problem, _iso(utcnow()) or "")

    def load(self, ref: str) -> dict[str, Any]:
        """What a reader needs (URI, digest, kind, manifest summary), after checking that the
        store still is the registered one; DataNotFoundError/IntegrityError otherwise (and the
        reason is kept on the version, so `quality` shows it)."""
        from ..errors import IntegrityError

        name, number = parse_ref(ref)
        with read_session(self.engine) as s:
            v = self._get(s, name, number, ready_only=True)
            info = {"ref": v.ref, "uri": v.uri, "digest": v.digest, "kind": v.kind, "summary": v.summary, "splits": v.splits}
            vid, recorded_error = v.id, v.error
        problem = digest_check(str(info["uri"]), str(info["digest"]), str(info["kind"]))
        if problem != recorded_error:  # remember (or clear) the failed check; no write when nothing changed
            with write_session(self.engine) as s:
                s.execute(update(Version).where(Version.id == vid).values(error=problem))
        if problem:
            raise IntegrityError(f"{info['ref']} cannot be loaded: {problem}")
        return info

    def record_run(self, ref: str, run_dir: str, model: str = "", metrics: dict[str, Any] | None = None) -> None:
        name, number = parse_ref(ref)
        with write_session(self.engine) as s:
            v = self._get(s, name, number)
            s.add(TrainingRun(version_id=v.id, run_dir=str(run_dir), model=model, metrics=dict(metrics or {})))


def open_registry(url: str | None = None) -> Registry:
    """The registry at `url` / $ASTROBIO_REGISTRY_URL / $ASTROBIO_HOME/registry.db."""
    return Registry(url)
