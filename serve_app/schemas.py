"""Request and response bodies of the HTTP API (validation and OpenAPI docs)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[dict[str, Any]] = Field(min_length=1, description="OCSF events, nested or flattened")


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str = Field(min_length=1, description="Model bundle directory, readable by every scorer replica")


class EventResult(BaseModel):
    """One event's score, or the reason it has none (`error`); neighbours and features
    only with `?explain=true`."""

    metadata_uid: str | None = None
    family: str | None = None
    anomaly_score: float | None = None
    percentile: float | None = None
    is_anomaly: bool | None = None
    error: str | None = None
    neighbours: list[dict[str, Any]] | None = None
    features: list[dict[str, Any]] | None = None


class ScoreResponse(BaseModel):
    model_version: str
    results: list[EventResult]


class FamilyInfo(BaseModel):
    categorical: int
    numeric: int
    features: int


class ModelInfo(BaseModel):
    version: str
    path: str
    percentile: float
    families: dict[str, FamilyInfo]


class Problem(BaseModel):
    """Every 4xx/5xx body: a one-line message, and the failing fields for 422."""

    detail: str
    errors: list[dict[str, Any]] | None = None
