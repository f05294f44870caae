"""The current data as a bundle sees it: featurized with the bundle's own FeatureSpecs
(never refitted, as at score time), and read back as uniform per-family samples."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from ocsf_ray.index.batch import write_bundle_features
from ocsf_ray.io.storage import parquet_files
from ocsf_ray.io.ingest import CanonicalArchive
from ocsf_ray.io.sources import join_uri
from ocsf_ray.train.data import FamilyFeatures, discover_features


def featurize_with_bundle(bundle: str, archive: CanonicalArchive, root: str,
                          on_family=None) -> dict[str, FamilyFeatures]:
    """`<root>/features/<family>/` for every family of the archive that the bundle models,
    made with the bundle's specs (`write_bundle_features`), found again as training reads them."""
    write_bundle_features(bundle, archive, root, on_family)
    return discover_features(root)


def _dataset(root: str, family: str) -> pads.Dataset:
    files, fs = parquet_files(join_uri(root, "features", family))
    return pads.dataset(files, filesystem=fs, format="parquet")


def sample_features(root: str, family: str, rows: int, seed: int) -> pl.DataFrame:
    """A uniform sample of at most `rows` of a family's feature rows, in file order."""
    dataset = _dataset(root, family)
    return pl.from_arrow(dataset.take(pa.array(sample_positions(dataset.count_rows(), rows, seed))))


def sample_positions(total: int, rows: int, seed: int) -> np.ndarray:
    """Sorted positions of a uniform sample of at most `rows` of `total`."""
    return np.sort(np.random.default_rng(seed).choice(total, size=min(rows, total), replace=False))


def features_since(root: str, family: str, cutoff_ms: int, rows: int, seed: int) -> pl.DataFrame:
    """A family's feature rows from `cutoff_ms` on, sorted by (time, metadata_uid) and
    uniformly sampled down to `rows`: the same events come back in the same order from
    features of the same archive made with other specs."""
    table = _dataset(root, family).to_table(filter=pc.field("time") >= cutoff_ms)
    frame = pl.from_arrow(table).sort("time", "metadata_uid")
    return frame[sample_positions(frame.height, rows, seed)] if frame.height > rows else frame
