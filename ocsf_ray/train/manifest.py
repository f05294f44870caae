"""A bundle's `manifest.json` as a typed, versioned model (pydantic).

Every reader and writer of a bundle's manifest goes through `Manifest.read` and
`Manifest.write`, so its keys are checked in one place. `schema_version` says how the
file is laid out: bundles written before it existed have none and read as version 1
(the same layout); a bundle written by a newer ocsf-ray, with a version this one does
not know, is refused with a one-line `BundleVersionError` naming both versions.
"""

from __future__ import annotations

import platform
import uuid
from datetime import datetime, timezone
from importlib import metadata

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ocsf_ray.io.sources import join_uri
from ocsf_ray.io.storage import read_json, write_json

MANIFEST = "manifest.json"
SCHEMA_VERSION = 1


class BundleVersionError(ValueError):
    """A manifest this ocsf-ray cannot read; the message names the versions."""


class FamilyEntry(BaseModel):
    """One family's training summary. A family too small for an encoder has
    `encoder` false and a `note`; a trained one its split and validation figures;
    a tuned one the hyperparameters `chosen`."""

    model_config = ConfigDict(extra="allow")

    rows: int
    encoder: bool = True
    categorical: int | None = None
    numeric: int | None = None
    note: str | None = None
    train_rows: int | None = None
    val_rows: int | None = None
    validation_from_time_ms: int | None = None
    epochs_run: int | None = None
    best_epoch: int | None = None
    val_top1: float | None = None
    val_loss: float | None = None
    untrained_val_top1: float | None = None
    chosen: dict | None = None


class IndexEntry(BaseModel):
    """What `ocsf_ray.index.index_bundle` built: its IndexOptions and, per family, the
    index kind, reference rows, time shards, recall@k and distance median and p99."""

    options: dict
    families: dict[str, dict]


class Manifest(BaseModel):
    """`<bundle>/manifest.json`: version (`<UTC time>-<8 hex>`, new for every bundle),
    creation time, each family's training summary, the families skipped (too few rows to
    score) with why, the TrainOptions (plus `workers`) and library versions it was trained
    with, and the index once built. A bundle without `index` cannot score."""

    model_config = ConfigDict(extra="allow")

    schema_version: int = SCHEMA_VERSION
    version: str
    created: str
    families: dict[str, FamilyEntry]
    skipped: dict[str, str] = Field(default_factory=dict)
    train_options: dict = Field(default_factory=dict)
    libraries: dict[str, str] = Field(default_factory=dict)
    index: IndexEntry | None = None

    @classmethod
    def new(cls, families: dict[str, dict], skipped: dict[str, str], train_options: dict) -> Manifest:
        """A manifest for a bundle being written now, with a fresh version."""
        now = datetime.now(timezone.utc)
        return cls(version=now.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8], created=now.isoformat(),
                   families=families, skipped=skipped, train_options=train_options, libraries=library_versions())

    @classmethod
    def read(cls, bundle: str) -> Manifest:
        """The manifest of the bundle at `bundle` (local or URI). Raises OSError when it
        is missing, BundleVersionError when its schema is newer than this code's or its
        content does not fit the schema."""
        data = read_json(join_uri(bundle, MANIFEST))
        found = data.get("schema_version", 1) if isinstance(data, dict) else None
        if not isinstance(found, int) or found > SCHEMA_VERSION:
            raise BundleVersionError(f"bundle {bundle} has manifest schema version {found}; this ocsf-ray reads "
                                     f"versions up to {SCHEMA_VERSION}: upgrade ocsf-ray or train the bundle again")
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise BundleVersionError(f"bundle {bundle}: manifest schema version {found} does not fit "
                                     f"({where}: {first['msg']})") from None

    def write(self, bundle: str) -> None:
        """Write it as `<bundle>/manifest.json` (readers take the bundle's version from it,
        so it is written last)."""
        write_json(self.model_dump(mode="json", exclude_none=True), join_uri(bundle, MANIFEST))

    @property
    def encoded_families(self) -> list[str]:
        """The families that have an encoder (all but those too small to train one)."""
        return [family for family, entry in self.families.items() if entry.encoder]

    @property
    def workers(self) -> int:
        """The Ray Train workers it was trained with (2 when not recorded)."""
        return int(self.train_options.get("workers", 2))


def library_versions() -> dict[str, str]:
    """Python's and the main libraries' versions, for the manifest."""
    names = ("ocsf-ray", "ray", "torch", "polars", "pyarrow", "numpy", "faiss-gpu", "faiss-cpu")
    found = {"python": platform.python_version()}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found
