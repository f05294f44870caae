"""Feature shards as training data: discovery, the chronological split, batch collation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow.parquet as pq

from ocsf_ray.features.spec import FeatureSpec, load_specs
from ocsf_ray.features.transform import feature_columns
from ocsf_ray.io.sources import filesystem_for, join_uri
from ocsf_ray.io.storage import parquet_files


@dataclass(frozen=True)
class FamilyFeatures:
    """One family's feature shards and the spec that made them."""

    family: str
    files: tuple[str, ...]
    spec: FeatureSpec
    rows: int

    @property
    def columns(self) -> tuple[list[str], list[str]]:
        return feature_columns(self.spec)


def discover_features(root: str) -> dict[str, FamilyFeatures]:
    """Families under a `featurize` output: `<root>/feature_spec.json` + `<root>/features/<family>/`."""
    specs = load_specs(join_uri(root, "feature_spec.json"))
    found = {}
    for family, spec in specs.items():
        directory = join_uri(root, "features", family)
        prefix = filesystem_for(directory)[2]
        files = tuple(prefix + path for path in parquet_files(directory)[0])
        rows = sum(_num_rows(f) for f in files)
        found[family] = FamilyFeatures(family, files, spec, rows)
    return found


def _num_rows(uri: str) -> int:
    fs, inner, _ = filesystem_for(uri)
    with fs.open_input_file(inner) as handle:
        return pq.ParquetFile(handle).metadata.num_rows


def time_cutoff(features: FamilyFeatures, val_fraction: float) -> tuple[int, int, int]:
    """(cutoff, train rows, validation rows): from the cutoff on, the latest `val_fraction`
    of events form the validation set.

    Only the `time` column is read (8 bytes a row), so this stays cheap at scale.
    """
    times = []
    for uri in features.files:
        fs, inner, _ = filesystem_for(uri)
        with fs.open_input_file(inner) as handle:
            times.append(pq.read_table(handle, columns=["time"]).column("time").to_numpy())
    times = np.concatenate(times)
    cutoff = int(np.quantile(times, 1 - val_fraction, method="higher"))
    train_rows = int((times < cutoff).sum())
    return cutoff, train_rows, len(times) - train_rows


def chronological_split(features: FamilyFeatures, val_fraction: float = 0.1):
    """(train, validation) Ray Datasets: validation is the latest events, as at score time,
    when a model trained on the past meets the future."""
    import ray.data
    from ray.data.expressions import col

    cutoff, train_rows, val_rows = time_cutoff(features, val_fraction)
    dataset = ray.data.read_parquet(list(features.files))
    train = dataset.filter(expr=col("time") < cutoff)
    val = dataset.filter(expr=col("time") >= cutoff)
    return train, val, (cutoff, train_rows, val_rows)


def collate(batch: dict[str, np.ndarray], categorical: list[str], numeric: list[str]):
    """A Ray Data numpy batch → (codes int64 [B, C], numerics float32 [B, N]) tensors."""
    import torch

    n = len(next(iter(batch.values())))
    codes = np.stack([batch[c] for c in categorical], axis=1).astype(np.int64) if categorical else np.zeros((n, 0), np.int64)
    numerics = np.stack([batch[c] for c in numeric], axis=1).astype(np.float32) if numeric else np.zeros((n, 0), np.float32)
    return torch.from_numpy(codes), torch.from_numpy(numerics)

