"""Retraining on the current data, and champion / challenger.

The challenger is trained like the champion (its training options, its index options,
the families it models) on the current data minus its latest `holdout_fraction` by time.
Both bundles are then measured on that held-out slice with training's own quality
measure, `val_top1` (`ocsf_ray.train.loop.validate`, each bundle on features made with
its own FeatureSpecs, the same validation settings for both). The challenger replaces the
champion only when it is not worse, and only after the champion was copied to a backup:

    <out>/monitor/challenger-data/          features fitted on the current data; train/ holds
                                            the rows before each family's held-out cutoff
    <out>/monitor/challenger/               the challenger bundle (indexed)
    <out>/monitor/backup/<champion version>/  the champion as it was, when it was replaced
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import uuid
from collections.abc import Callable

import polars as pl
import pyarrow.compute as pc
import pyarrow.dataset as pads
import torch

from ocsf_ray.features.pipeline import fit_family, write_features
from ocsf_ray.features.spec import FeatureOptions, save_specs
from ocsf_ray.features.transform import feature_columns
from ocsf_ray.index import IndexOptions, index_bundle
from ocsf_ray.io.ingest import CanonicalArchive
from ocsf_ray.io.sources import filesystem_for, join_uri, write_bytes, write_parquet
from ocsf_ray.io.storage import copy_tree, exists, is_uri, read_bytes
from ocsf_ray.monitor.current import features_since
from ocsf_ray.monitor.options import MonitorOptions
from ocsf_ray.train.bundle import load_family
from ocsf_ray.train.manifest import MANIFEST, Manifest
from ocsf_ray.train.data import discover_features, time_cutoff
from ocsf_ray.train.loop import validate
from ocsf_ray.train.options import TrainOptions
from ocsf_ray.train.trainer import train_bundle

Progress = Callable[[str, int, int], None]


def champion_train_options(manifest: Manifest) -> TrainOptions:
    """The TrainOptions a bundle was trained with (its manifest also records `workers`)."""
    names = {f.name for f in dataclasses.fields(TrainOptions)}
    return TrainOptions(**{k: v for k, v in manifest.train_options.items() if k in names})


def challenger_features(archive: CanonicalArchive, root: str, families: list[str],
                        holdout_fraction: float) -> tuple[dict[str, int], str]:
    """Fit FeatureSpecs on the current data and featurize it under `root`, then copy each
    family's rows before its held-out cutoff to `<root>/train`; (cutoffs, train root)."""
    specs = {}
    for family in families:
        specs[family] = fit_family(archive, family, FeatureOptions())
        write_features(archive, family, specs[family], root)
    save_specs(specs, join_uri(root, "feature_spec.json"))
    train_root, cutoffs = join_uri(root, "train"), {}
    for family, features in discover_features(root).items():
        cutoffs[family] = time_cutoff(features, holdout_fraction)[0]
        for i, uri in enumerate(features.files):
            fs, inner, _ = filesystem_for(uri)
            table = pads.dataset(inner, filesystem=fs, format="parquet").to_table(filter=pc.field("time") < cutoffs[family])
            if table.num_rows:
                write_parquet(pl.from_arrow(table), join_uri(train_root, "features", family, f"part-{i:05d}.parquet"))
    save_specs(specs, join_uri(train_root, "feature_spec.json"))
    return cutoffs, train_root


class EncoderViews(torch.nn.Module):
    """A bundle's encoder in the (embedding, projection) shape validation expects: bundles
    keep no projection head, and `val_top1` reads only the embedding."""

    def __init__(self, encoder: torch.nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, codes: torch.Tensor, numerics: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder(codes, numerics)
        return z, z


class FrameBatches:
    """Feature rows with the one method validation reads from a Ray Data shard."""

    def __init__(self, frame: pl.DataFrame):
        self.frame = frame

    def iter_batches(self, batch_size: int, batch_format: str = "numpy", drop_last: bool = False):
        for start in range(0, self.frame.height, batch_size):
            part = self.frame.slice(start, batch_size)
            if drop_last and part.height < batch_size:
                return
            yield {column: part.get_column(column).to_numpy() for column in part.columns}


def held_out_top1(bundle: str, family: str, rows: pl.DataFrame, options: TrainOptions) -> float:
    """`val_top1` of a bundle's family model on feature rows made with its own spec."""
    model = load_family(bundle, family)
    categorical, numeric = feature_columns(model.spec)
    batches = FrameBatches(rows.select(categorical + numeric))
    return validate(EncoderViews(model.model), batches, (categorical, numeric), options, model.device)["val_top1"]


def compare(champion: str, challenger: str, champion_root: str, challenger_root: str, cutoffs: dict[str, int],
            options: MonitorOptions) -> dict[str, dict]:
    """Per family: both bundles' val_top1 on the same held-out events, with the champion's
    validation settings."""
    settings = champion_train_options(Manifest.read(champion))
    trained = Manifest.read(challenger).encoded_families
    found = {}
    for family, cutoff in cutoffs.items():
        rows = features_since(champion_root, family, cutoff, options.max_rows, options.seed)
        entry = {"held_out_rows": rows.height, "held_out_from_ms": cutoff,
                 "champion_val_top1": held_out_top1(champion, family, rows, settings) if rows.height >= 2 else None,
                 "challenger_val_top1": None}
        if family in trained and rows.height >= 2:
            theirs = features_since(challenger_root, family, cutoff, options.max_rows, options.seed)
            if not theirs.get_column("metadata_uid").equals(rows.get_column("metadata_uid")):
                raise RuntimeError(f"{family}: champion and challenger features hold different held-out events")
            entry["challenger_val_top1"] = held_out_top1(challenger, family, theirs, settings)
        found[family] = entry
    return found


def weighted_top1(families: dict[str, dict], side: str) -> float | None:
    compared = [f for f in families.values() if f["champion_val_top1"] is not None and f["challenger_val_top1"] is not None]
    rows = sum(f["held_out_rows"] for f in compared)
    return sum(f[f"{side}_val_top1"] * f["held_out_rows"] for f in compared) / rows if rows else None


def decide(families: dict[str, dict], champion_families: list[str]) -> tuple[bool, str]:
    """(promote?, why): the challenger must model every family the champion models and
    match or beat its held-out val_top1 (weighted by held-out rows over the families)."""
    lacking = [f for f in champion_families
               if f not in families or families[f]["champion_val_top1"] is None or families[f]["challenger_val_top1"] is None]
    if lacking:
        return False, f"champion kept: the challenger has no held-out figure for {', '.join(lacking)}, which the champion models"
    ours, theirs = weighted_top1(families, "champion"), weighted_top1(families, "challenger")
    if theirs >= ours:
        return True, f"challenger promoted: held-out val_top1 {theirs:.4f} >= champion's {ours:.4f}"
    return False, f"champion kept: challenger's held-out val_top1 {theirs:.4f} < champion's {ours:.4f}"


def promote(champion: str, challenger: str, backups: str) -> str:
    """Replace the champion bundle with the challenger, after copying the champion to
    `<backups>/<its version>`; the backup's location. On local disk the new bundle is
    assembled beside the champion and swapped in by renames, so no reader sees a
    half-copied bundle. Object stores have no rename: there the challenger's files are
    copied over the champion's (both model the same families, `decide` saw to that) and
    its manifest last, since readers take a bundle's version from its manifest."""
    backup = join_uri(backups, Manifest.read(champion).version)
    if exists(backup):
        backup = f"{backup}-{uuid.uuid4().hex[:8]}"
    copy_tree(champion, backup)
    if is_uri(champion):
        copy_tree(challenger, champion, skip=("_runs", MANIFEST))
        write_bytes(read_bytes(join_uri(challenger, MANIFEST)), join_uri(champion, MANIFEST))
        return backup
    base = os.path.abspath(champion).rstrip(os.sep)
    staging, retired = f"{base}.incoming-{uuid.uuid4().hex[:8]}", f"{base}.retired-{uuid.uuid4().hex[:8]}"
    shutil.copytree(challenger, staging, ignore=shutil.ignore_patterns("_runs"))
    os.rename(base, retired)
    os.rename(staging, base)
    shutil.rmtree(retired)
    return backup


def retrain_challenger(champion: str, archive: CanonicalArchive, root: str, options: MonitorOptions = MonitorOptions(),
                       train_options: TrainOptions | None = None, workers: int | None = None,
                       on_progress: Progress | None = None) -> dict:
    """Train a challenger on the current data (all but the held-out slice), measure both
    bundles on the held-out slice, and promote the challenger when it is not worse; the
    report's `challenger` section. `train_options` / `workers` default to the champion's."""
    manifest = Manifest.read(champion)
    families = [f for f in manifest.families if f in archive.families]
    outcome = {"bundle": join_uri(root, "challenger"), "holdout_fraction": options.holdout_fraction,
               "families": {}, "promoted": False, "winner": "champion", "backup": None}
    if not families:
        return outcome | {"reason": "champion kept: the current data has none of the champion's families"}
    step = on_progress or (lambda description, done, total: None)
    step("challenger features", 0, 3)
    data_root = join_uri(root, "challenger-data")
    cutoffs, train_root = challenger_features(archive, data_root, families, options.holdout_fraction)
    step("train challenger", 1, 3)
    settings = train_options or champion_train_options(manifest)
    trained = train_bundle(train_root, outcome["bundle"], settings,
                           workers=workers or manifest.workers)
    if trained.manifest.families:
        index_bundle(outcome["bundle"], train_root, IndexOptions(**manifest.index.options))
    step("compare on held-out data", 2, 3)
    encoded = manifest.encoded_families  # families without an encoder have no val_top1 to compare
    compared = compare(champion, outcome["bundle"], join_uri(root, "current"), data_root,
                       {f: cutoff for f, cutoff in cutoffs.items() if f in encoded}, options)
    promoted, reason = decide(compared, encoded)
    outcome |= {
        "version": trained.manifest.version, "skipped": trained.manifest.skipped, "families": compared,
        "champion_val_top1": weighted_top1(compared, "champion"),
        "challenger_val_top1": weighted_top1(compared, "challenger"),
        "promoted": promoted, "winner": "challenger" if promoted else "champion", "reason": reason,
    }
    if promoted:
        outcome["backup"] = promote(champion, outcome["bundle"], join_uri(root, "backup"))
    step("done", 3, 3)
    return outcome
