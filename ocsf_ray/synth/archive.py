"""Generate an archive: plan on the driver, one Ray task per shard, then ground truth.

Each task generates one (source kind, hour, part) shard from the shared world and
its own seed, writes the events under `events/<source>/<YYYYMMDDHH>/` and a labels
part beside the ground truth, and returns only counts, so driver memory stays flat
whatever the archive size. The labels parts are then merged in a fixed order.
The caller owns Ray: this module never calls `ray.init()`. `out` must be a path
every Ray worker can write (the local disk on one machine, a shared file system
on a cluster).
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import ray

from .auth import auth_events
from .changes import change_events
from .config import SOURCES, SynthConfig
from .logs import log_events
from .metrics import metric_events
from .plan import Shard, World, plan_world
from .spans import simulate_spans
from .traces import trace_events

LABEL_SCHEMA = pa.schema([("metadata_uid", pa.string()), ("is_anomaly", pa.bool_()), ("incident_id", pa.string())])
_TASK_CODE = {"requests": 2, "metrics": 3, "config": 4, "auth": 5}


@dataclass(frozen=True)
class ShardResult:
    events: dict[str, int]  # per source
    labelled: dict[str, int]  # per incident id
    files: int


@dataclass(frozen=True)
class SynthSummary:
    out: Path
    events_dir: Path
    ground_truth_dir: Path
    events_per_source: dict[str, int]
    anomalous_events: int
    incidents: tuple[dict, ...] = field(repr=False)
    files: int
    elapsed_s: float

    @property
    def total_events(self) -> int:
        return sum(self.events_per_source.values())


def _generate(world: World, shard: Shard) -> dict[str, tuple[pa.Table, np.ndarray]]:
    rng = world.task_rng(_TASK_CODE[shard.kind], shard.hour, shard.part)
    if shard.kind == "requests":
        spans = simulate_spans(world, shard, rng)
        return {"traces": trace_events(world, shard, spans), "logs": log_events(world, shard, spans, rng)}
    if shard.kind == "metrics":
        return {"metrics": metric_events(world, shard, rng)}
    if shard.kind == "auth":
        return {"auth": auth_events(world, shard, rng)}
    return {"config": change_events(world.changes, world.topology, world.run_tag, shard.hour, world.config.start_ms)}


def _write_events(table: pa.Table, path: Path, fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        pq.write_table(table, path.with_suffix(".parquet"), compression="zstd")
    else:
        buffer = io.BytesIO()
        pl.from_arrow(table).write_ndjson(buffer)
        # mtime=0 keeps the gzip header, and so the archive, identical from run to run
        path.with_suffix(".ndjson.gz").write_bytes(gzip.compress(buffer.getvalue(), compresslevel=3, mtime=0))


def generate_shard(world: World, shard: Shard) -> ShardResult:
    """Generate and write one shard; a plain function, so it also runs without Ray."""
    out = world.config.out
    hour = datetime.fromtimestamp(world.hour_start(shard.hour) / 1000, tz=timezone.utc).strftime("%Y%m%d%H")
    ids = pa.array([inc.id for inc in world.incidents] or [""], pa.string())
    events: dict[str, int] = {}
    labelled = np.zeros(len(world.incidents), dtype=np.int64)
    for source, (table, incident) in _generate(world, shard).items():
        _write_events(table, out / "events" / source / hour / f"part-{shard.part:05d}", world.config.format)
        incident = np.asarray(incident)
        labels = pa.table(
            [table.column("metadata").combine_chunks().field("uid"), pa.array(incident >= 0),
             ids.take(pa.array(np.maximum(incident, 0), mask=incident < 0))],
            schema=LABEL_SCHEMA,
        )
        pq.write_table(labels, out / "ground_truth" / "_parts" / f"{source}-{hour}-{shard.part:05d}.parquet")
        events[source] = table.num_rows
        labelled += np.bincount(incident[incident >= 0], minlength=len(world.incidents))
    labelled_by_id = {inc.id: int(c) for inc, c in zip(world.incidents, labelled) if c}
    return ShardResult(events=events, labelled=labelled_by_id, files=len(events))


_generate_shard_task = ray.remote(generate_shard)


def prepare_output(out: Path, overwrite: bool) -> None:
    existing = [out / d for d in ("events", "ground_truth") if (out / d).exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{out} already holds an archive; remove it or set overwrite")
    for d in existing:
        shutil.rmtree(d)
    (out / "ground_truth" / "_parts").mkdir(parents=True)


def merge_labels(ground_truth: Path) -> None:
    parts = sorted((ground_truth / "_parts").glob("*.parquet"))
    with pq.ParquetWriter(ground_truth / "labels.parquet", LABEL_SCHEMA, compression="zstd") as writer:
        for part in parts:
            writer.write_table(pq.read_table(part))
    shutil.rmtree(ground_truth / "_parts")


def write_ground_truth(world: World, results: list[ShardResult]) -> tuple[dict, ...]:
    gt = world.config.out / "ground_truth"
    labelled: Counter[str] = Counter()
    for r in results:
        labelled.update(r.labelled)
    incidents = tuple(inc.to_json(world.topology) | {"labelled_events": labelled[inc.id]} for inc in world.incidents)
    changes = world.changes
    noise = {
        "load_peaks": [asdict(p) for p in world.load.peaks],
        "benign_changes": [
            {"uid": changes.uid[i], "time": int(changes.time[i]), "type": changes.kind[i],
             "service": world.topology.names[changes.service[i]]}
            for i in np.flatnonzero(changes.incident < 0)
        ],
    }
    files = {"incidents.json": list(incidents), "topology.json": world.topology.to_json(), "noise.json": noise}
    for name, content in files.items():
        (gt / name).write_text(json.dumps(content, indent=2) + "\n")
    return incidents


def generate_archive(
    config: SynthConfig, on_progress: Callable[[int, int], None] | None = None
) -> SynthSummary:
    """Write a synthetic OCSF archive with injected incidents and its ground truth.

    Needs an initialised Ray (`ray.init()` by the caller). `on_progress(done, total)`
    is called after each finished task.
    """
    started = time.perf_counter()
    prepare_output(config.out, config.overwrite)
    world = plan_world(config)
    world_ref = ray.put(world)
    pending = [_generate_shard_task.remote(world_ref, shard) for shard in world.shards]
    total, done = len(pending), 0
    if on_progress:
        on_progress(0, total)
    waiting = list(pending)
    while waiting:
        finished, waiting = ray.wait(waiting, num_returns=1)
        done += len(finished)
        if on_progress:
            on_progress(done, total)
    results = ray.get(pending)
    merge_labels(config.out / "ground_truth")
    incidents = write_ground_truth(world, results)
    counts: Counter[str] = Counter()
    for r in results:
        counts.update(r.events)
    return SynthSummary(
        out=config.out,
        events_dir=config.out / "events",
        ground_truth_dir=config.out / "ground_truth",
        events_per_source={s: counts[s] for s in SOURCES},
        anomalous_events=sum(sum(r.labelled.values()) for r in results),
        incidents=incidents,
        files=sum(r.files for r in results),
        elapsed_s=time.perf_counter() - started,
    )
