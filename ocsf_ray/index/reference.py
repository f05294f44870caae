"""A family's scoring state in the bundle: reference rows, FAISS indexes, calibration.

    <bundle>/<family>/index.npz          FAISS indexes of the reference embeddings, one per
                                         time shard (serialised CPU form), and shard bounds
    <bundle>/<family>/reference.parquet  the reference rows' identity and feature values,
                                         sorted by time, in index order (for explanations)
    <bundle>/<family>/calibration.json   score calibration, time shards, index description

The reference is split into time shards of `exclusion_minutes` so that a query can skip
the shards around its own time (see `IndexOptions.exclusion_minutes`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import faiss
import numpy as np
import polars as pl

from ocsf_ray.index.calibration import Calibration
from ocsf_ray.index.options import IndexOptions
from ocsf_ray.index.search import IndexInfo, build_index, on_best_device, search_excluding

INDEX, REFERENCE, CALIBRATION = "index.npz", "reference.parquet", "calibration.json"
MIN_SHARDS = 4  # below this, excluding 3 shards around a query would leave too little


def uid_keys(uids: pl.Series) -> np.ndarray:
    """64-bit keys of metadata_uids, to recognise an event among its own neighbours
    without string comparisons (computed in-process on both sides, so stable)."""
    return uids.cast(pl.String).hash(seed=0).to_numpy().view(np.int64)


@dataclass(frozen=True)
class TimeShards:
    """Reference rows (sorted by time) cut into windows of `width_ms`; width 0 = one
    shard and no exclusion."""

    start_ms: int
    width_ms: int
    bounds: tuple[int, ...]  # shard j holds rows bounds[j]:bounds[j + 1]

    @classmethod
    def plan(cls, times: np.ndarray, exclusion_minutes: float) -> "TimeShards":
        width = int(exclusion_minutes * 60_000)
        count = int((times.max() - times.min()) // width + 1) if width > 0 and times.size else 0
        if count < MIN_SHARDS:
            return cls(0, 0, (0, int(times.size)))
        shard = (times - times.min()) // width
        return cls(int(times.min()), width, tuple(np.searchsorted(shard, np.arange(count + 1)).tolist()))

    def of(self, times: np.ndarray) -> np.ndarray:
        if not self.width_ms:
            return np.zeros(len(times), np.int64)
        return (np.asarray(times, np.int64) - self.start_ms) // self.width_ms

    @property
    def radius(self) -> int:
        return 1 if self.width_ms else -1


def build_shards(embeddings: np.ndarray, shards: TimeShards, options: IndexOptions) -> tuple[list[faiss.Index], IndexInfo]:
    """One index per time shard; the description reports the worst measured recall."""
    built = [build_index(embeddings[lo:hi], options) for lo, hi in zip(shards.bounds, shards.bounds[1:])]
    recalls = [info.recall_at_k for _, info in built if info.recall_at_k is not None]
    kinds = sorted({info.kind for _, info in built})
    info = IndexInfo("+".join(kinds), len(embeddings), max(i.nlist for _, i in built), max(i.nprobe for _, i in built),
                     min(recalls) if recalls else None)
    return [index for index, _ in built], info


@dataclass
class FamilyIndex:
    family: str
    shards: list[faiss.Index]
    time_shards: TimeShards
    reference: pl.DataFrame
    calibration: Calibration | None
    info: IndexInfo
    options: IndexOptions

    def __post_init__(self) -> None:
        self.reference_keys = uid_keys(self.reference.get_column("metadata_uid"))

    def search(self, embeddings: np.ndarray, uids: pl.Series, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(distances, reference rows) of each query's k nearest admissible neighbours."""
        return search_excluding(
            self.shards, np.asarray(self.time_shards.bounds), embeddings, self.time_shards.of(times),
            uid_keys(uids), self.reference_keys, self.options.k, self.time_shards.radius,
        )

    def save(self, bundle: str) -> None:
        directory = os.path.join(bundle, self.family)
        np.savez(os.path.join(directory, INDEX), *[faiss.serialize_index(s) for s in self.shards])
        self.reference.write_parquet(os.path.join(directory, REFERENCE))
        with open(os.path.join(directory, CALIBRATION), "w") as handle:
            json.dump({"calibration": self.calibration.to_dict(), "time_shards": self.time_shards.__dict__,
                       "index": self.info.to_dict(), "options": self.options.to_dict()}, handle, indent=1)

    @classmethod
    def load(cls, bundle: str, family: str) -> "FamilyIndex":
        """Read a family's indexes, moved to every GPU present."""
        directory = os.path.join(bundle, family)
        path = os.path.join(directory, CALIBRATION)
        if not os.path.exists(path):
            raise FileNotFoundError(f"bundle {bundle} has no index for {family}: train it with `ocsf-ray train` or `run`")
        with open(path) as handle:
            saved = json.load(handle)
        with np.load(os.path.join(directory, INDEX)) as stored:
            shards = [on_best_device(faiss.deserialize_index(stored[f"arr_{j}"])) for j in range(len(stored.files))]
        time_shards = saved["time_shards"]
        return cls(
            family, shards, TimeShards(time_shards["start_ms"], time_shards["width_ms"], tuple(time_shards["bounds"])),
            pl.read_parquet(os.path.join(directory, REFERENCE)), Calibration.from_dict(saved["calibration"]),
            IndexInfo(**saved["index"]), IndexOptions(**saved["options"]),
        )
