"""A family's scoring state in the bundle: reference rows, FAISS indexes, calibration.

    <bundle>/<family>/index.npz          FAISS indexes of the reference embeddings and of
                                         their scaled feature vectors, one per time shard
                                         (serialised CPU form)
    <bundle>/<family>/reference.parquet  the reference rows' identity and feature values,
                                         sorted by time, in index order (for explanations)
    <bundle>/<family>/calibration.json   score calibration, time shards, index description

The reference is split into time shards of `exclusion_minutes` so that a query can skip
the shards around its own time (see `IndexOptions.exclusion_minutes`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import faiss
import numpy as np
import polars as pl

from ocsf_ray.features.spec import FeatureSpec
from ocsf_ray.features.transform import feature_vectors
from ocsf_ray.index.calibration import FUSION, ScoreCalibration
from ocsf_ray.index.options import IndexOptions
from ocsf_ray.index.rarity import FieldRarity
from ocsf_ray.index.search import IndexInfo, build_index, on_best_device, search_excluding
from ocsf_ray.io.sources import join_uri, write_bytes, write_parquet
from ocsf_ray.io.storage import exists, read_bytes, read_json, write_json

INDEX, REFERENCE, CALIBRATION = "index.npz", "reference.parquet", "calibration.json"
MIN_SHARDS = 4  # below this, excluding 3 shards around a query would leave too little
TARGET_SHARDS = 8  # shards are at most a TARGET_SHARDS-th of the reference's time span wide
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
        """Shards `exclusion_minutes` wide, narrowed to a TARGET_SHARDS-th of the reference's
        span when that is shorter (a 2-hour archive gets 15-minute shards, so a burst in it
        still cannot be its own neighbour); widths are whole minutes, and there are no shards
        (no exclusion) below one minute or MIN_SHARDS shards."""
        span = int(times.max() - times.min()) if times.size else 0
        width = int(min(exclusion_minutes, span / TARGET_SHARDS / 60_000)) * 60_000  # whole minutes
        count = span // width + 1 if width else 0
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
    """Two k-NN views of the same reference rows: their embeddings (what the model learned
    is alike) and their feature vectors (what is literally alike)."""

    family: str
    shards: list[faiss.Index]
    feature_shards: list[faiss.Index]
    time_shards: TimeShards
    reference: pl.DataFrame
    calibration: ScoreCalibration | None
    info: IndexInfo
    options: IndexOptions

    embeddings: np.ndarray  # [reference rows, dim], row-aligned with `reference`
    vectors: np.ndarray  # the reference rows' feature vectors, likewise
    spec: FeatureSpec

    def __post_init__(self) -> None:
        self.reference_keys = uid_keys(self.reference.get_column("metadata_uid"))
        self.rarity = FieldRarity.fit(self.reference, self.spec, np.asarray(self.time_shards.bounds),
                                      self.time_shards.radius)

    def field_rarity(self, features: pl.DataFrame) -> np.ndarray:
        """-ln p of each row's fields among the admissible reference rows, [rows, fields]
        in `self.rarity.fields()` order (see `ocsf_ray.index.rarity`)."""
        keys = uid_keys(features.get_column("metadata_uid"))
        return self.rarity.score(features, self.time_shards.of(features.get_column("time").to_numpy()),
                                 np.isin(keys, self.reference_keys))

    def search(self, vectors: np.ndarray, uids: pl.Series, times: np.ndarray,
               on_features: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(exact distances, reference rows) of each query's k nearest admissible
        neighbours, among the embeddings or (on_features) among the feature vectors."""
        return search_excluding(
            self.feature_shards if on_features else self.shards, np.asarray(self.time_shards.bounds), vectors,
            self.time_shards.of(times), uid_keys(uids), self.reference_keys, self.options.k, self.time_shards.radius,
            self.vectors if on_features else self.embeddings,
        )

    @classmethod
    def fit(cls, family: str, features: pl.DataFrame, embeddings: np.ndarray, spec: FeatureSpec,
            options: IndexOptions) -> tuple["FamilyIndex", np.ndarray]:
        """(the index of these reference rows, the permutation that sorted them by time):
        time shards, one FAISS index per shard and view, field-rarity counts. The
        calibration is left to the caller (`FamilyScorer.fit`), which scores the rows."""
        order = np.argsort(features.get_column("time").to_numpy(), kind="stable")
        reference, embeddings = features[order], embeddings[order]
        time_shards = TimeShards.plan(reference.get_column("time").to_numpy(), options.exclusion_minutes)
        vectors = feature_vectors(reference, spec)
        shards, info = build_shards(embeddings, time_shards, options)
        feature_shards, _ = build_shards(vectors, time_shards, options)
        return cls(family, shards, feature_shards, time_shards, reference, None, info, options, embeddings, vectors,
                   spec), order

    def save(self, bundle: str) -> None:
        directory = join_uri(bundle, self.family)
        stored = {"embeddings": self.embeddings}
        stored |= {f"embedding_{j}": faiss.serialize_index(s) for j, s in enumerate(self.shards)}
        stored |= {f"features_{j}": faiss.serialize_index(s) for j, s in enumerate(self.feature_shards)}
        buffer = io.BytesIO()
        np.savez(buffer, **stored)
        write_bytes(buffer.getvalue(), join_uri(directory, INDEX))
        write_parquet(self.reference, join_uri(directory, REFERENCE))
        write_json({"calibration": self.calibration.to_dict(), "time_shards": self.time_shards.__dict__,
                    "index": self.info.to_dict(), "options": self.options.to_dict()}, join_uri(directory, CALIBRATION))

    @classmethod
    def load(cls, bundle: str, family: str, spec: FeatureSpec) -> "FamilyIndex":
        """Read a family's indexes, moved to every GPU present (feature vectors are
        rebuilt from the reference rows with the family's spec rather than stored)."""
        directory = join_uri(bundle, family)
        path = join_uri(directory, CALIBRATION)
        if not exists(path):
            raise FileNotFoundError(f"bundle {bundle} has no index for {family}: train it with `ocsf-ray train` or `run`")
        saved = read_json(path)
        if saved["calibration"].get("fusion") != FUSION:
            raise ValueError(f"bundle {bundle} was indexed by an older ocsf-ray: index it again (`ocsf-ray train` or `run`)")
        time_shards = TimeShards(saved["time_shards"]["start_ms"], saved["time_shards"]["width_ms"],
                                 tuple(saved["time_shards"]["bounds"]))
        count = len(time_shards.bounds) - 1
        with np.load(io.BytesIO(read_bytes(join_uri(directory, INDEX)))) as stored:
            shards, feature_shards = (
                [on_best_device(faiss.deserialize_index(stored[f"{kind}_{j}"])) for j in range(count)]
                for kind in ("embedding", "features")
            )
            embeddings = stored["embeddings"]
        reference = pl.read_parquet(io.BytesIO(read_bytes(join_uri(directory, REFERENCE))))
        return cls(
            family, shards, feature_shards, time_shards, reference, ScoreCalibration.from_dict(saved["calibration"]),
            IndexInfo(**saved["index"]), IndexOptions(**saved["options"]), embeddings, feature_vectors(reference, spec),
            spec,
        )
