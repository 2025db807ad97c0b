"""Request and response models of the REST API (pydantic; unknown fields are refused)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from ..registry.core import NAME_PATTERN

__all__ = ["CollectRequest", "ClimateCollect", "CatalogueCollect", "MetabolicCollect", "JobOut", "CollectAccepted",
           "VersionOut", "DatasetOut", "DatasetSummary", "LoadOut"]

Name = Annotated[str, Field(pattern=NAME_PATTERN.pattern, description="dataset name")]
PathStr = Annotated[str, Field(min_length=1, max_length=4096, description="path inside an allowed source root")]
RunId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ClimateCollect(_Strict):
    """A climate NetCDF run set: run id -> .nc file or folder of .nc files."""

    format: Literal["climate"]
    dataset: Name
    runs: dict[RunId, PathStr] = Field(min_length=1, max_length=512)
    variables: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(min_length=1, max_length=64)
    split: dict[Literal["train", "val", "test"], list[RunId]] | None = None
    units: dict[str, str] = Field(default_factory=dict)
    kind: Literal["simulation", "observation"] = "simulation"


class CatalogueCollect(_Strict):
    """A planet catalogue (exoplanet.eu CSV, NASA Exoplanet Archive CSV or VOTable)."""

    format: Literal["catalogue"]
    dataset: Name
    source: PathStr
    catalogue_schema: Literal["nasa", "exoplanet.eu"] = Field("nasa", alias="schema")


class MetabolicCollect(_Strict):
    """Metabolic models: name -> SBML (.xml, .xml.gz) or COBRA JSON file."""

    format: Literal["metabolic"]
    dataset: Name
    models: dict[RunId, PathStr] = Field(min_length=1, max_length=64)


CollectRequest = Annotated[Union[ClimateCollect, CatalogueCollect, MetabolicCollect], Field(discriminator="format")]


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
