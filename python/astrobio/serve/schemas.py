"""Request and response models of the REST API (pydantic; unknown fields are refused)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

from ..ingest.formats import format_names, get_format
from ..registry.core import NAME_PATTERN

__all__ = ["CollectRequest", "collect_models", "JobOut", "CollectAccepted", "VersionOut", "DatasetOut", "DatasetSummary", "LoadOut"]

Name = Annotated[str, Field(pattern=NAME_PATTERN.pattern, description="dataset name")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def collect_models() -> dict[str, type[BaseModel]]:
    """One collect body per registered source format (`astrobio.ingest.formats`): its request
    model plus `format` (the discriminator) and `dataset`, named `<Format>Collect`."""
    out: dict[str, type[BaseModel]] = {}
    for name in format_names():
        fmt = get_format(name)
        title = "".join(part.capitalize() for part in name.replace("-", "_").split("_")) + "Collect"
        out[name] = create_model(title, __base__=fmt.request, __doc__=fmt.request.__doc__ or fmt.help,
                                 format=(Literal[name], Field(description=f"source format: {fmt.help or name}")),  # type: ignore[valid-type]
                                 dataset=(Name, ...))
    return out


#: The collect body: a union of every registered format's body, discriminated by "format",
#: generated from the format registry when the service starts (the OpenAPI schema lists each
#: format's fields).
CollectRequest = Annotated[Union[tuple(collect_models().values())], Field(discriminator="format")]  # type: ignore[misc]


class JobOut(BaseModel):
    id: str
    dataset: str
    version: int | None
    ref: str | None
    state: str = Field(description="queued, running, succeeded or failed")
    progress: str
    error: str
    created: str | None
    updated: str | None


class CollectAccepted(BaseModel):
    job_id: str
    ref: str
    state: str


class VersionOut(BaseModel):
    ref: str
    dataset: str
    version: int
    status: str
    kind: str
    uri: str
    digest: str
    splits: dict[str, Any]
    provenance: dict[str, Any]
    error: str
    created: str | None
    updated: str | None
    quality_success: bool | None
    runs: list[dict[str, Any]] = Field(default_factory=list)


class DatasetSummary(BaseModel):
    name: str
    description: str
    created: str | None
    versions: int
    latest_ready: int | None


class DatasetOut(BaseModel):
    name: str
    description: str
    created: str | None
    versions: list[VersionOut]


class LoadOut(BaseModel):
    """What a reader needs: open `uri` with astrobio's store API and check `digest`."""

    ref: str
    uri: str
    digest: str
    kind: str
    summary: dict[str, Any]
    splits: dict[str, Any]
