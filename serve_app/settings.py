"""Serving settings with their defaults in one place (the serve config's `args`, the CLI)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ocsf_ray.index.scorer import DEFAULT_PERCENTILE

TOKEN_ENV = "OCSF_RAY_API_TOKEN"  # when set, every /v1 call needs `Authorization: Bearer <token>`


class ServeSettings(BaseModel):
    """What the application serves and the limits it keeps.

    max_events / max_body_bytes: one request's ceiling (413 beyond), so that a single
        caller cannot hold a scorer replica for long; max_explain_events is lower because
        each explained event costs one re-embedding per feature group.
    max_batch_size / batch_wait_timeout_s: `@serve.batch` groups the requests that arrive
        within the timeout into one embedding + search call per family; 5 ms costs a lone
        request little and lets concurrent ones share a call.
    scorer_replicas: fixed scorer replicas (the serve config may autoscale instead).
    scorer_num_cpus / ingress_num_cpus: per-replica CPUs; Ray also sets a replica's
        OpenMP threads (FAISS search, torch) to its whole CPUs. GPUs are chosen by the
        builder (one per scorer replica when torch sees CUDA).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    model: str = Field(min_length=1, description="Model bundle directory (from `train`, `tune` or `run`)")
    percentile: float = Field(DEFAULT_PERCENTILE, gt=0, lt=100, description="is_anomaly threshold")
    max_events: int = Field(1000, ge=1)
    max_body_bytes: int = Field(10 * 2**20, ge=1024)
    max_explain_events: int = Field(100, ge=1)
    max_batch_size: int = Field(32, ge=1)
    batch_wait_timeout_s: float = Field(0.005, ge=0)
    scorer_replicas: int = Field(1, ge=1)
    scorer_num_cpus: float = Field(1.0, gt=0)
    ingress_num_cpus: float = Field(0.5, ge=0)
