"""Featurize benchmark: ocsf-ray on Ray Data against two single-process baselines, in one run.

Input: the real seed sample `../shared/data/seed-sample/ocsf_logs.parquet` replicated to N events
(each copy shifted in time by the sample's span), as ~250k-row Parquet shards in a temp folder.

* pandas: the tutorial's documented approach (`pd.read_parquet`, `astype(str)` + scikit-learn
  `LabelEncoder` per categorical, `StandardScaler` on numerics, hour and day of week from
  `pd.to_datetime(time, unit="ms")`, written to Parquet) on the columns the ocsf-ray spec picks,
  where the file has them flat. What ocsf-ray replaces; target: Ray path >= 5x faster.
* polars: the same ocsf-ray functions (`read_chunk`, `canonicalize`, `fit_spec`,
  `extract`) in one process without Ray, so the difference is what Ray costs on one machine;
  target: Ray path >= 0.7x its speed.
* ray: `read_events` + `featurize_archive` on a local Ray (`start_ray(num_cpus=4)`), end to end
  with all writes; Ray's startup is reported, not timed.

Each path runs in its own subprocess; its peak RSS is the kernel's high-water mark (`getrusage`).
For the Ray path the parent also samples the child's process tree every 0.2 s with psutil, per
stage: RSS of the driver, summed RSS of Ray workers (`ray::*`) and of Ray's other processes
(raylet, GCS, ...), and the largest worker. Summed RSS counts shared pages (object store,
libraries) in every process that maps them, so it is an upper bound. The machine may be shared:
a run that leaves less than --min-free-gb available is stopped and reported with its peaks so far.

    python bench/featurize.py --repeats 3                            # 1M events, all paths
    python bench/featurize.py --events 5000000 --paths ray --profile # fit/transform timed apart
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
import psutil

REPO = Path(__file__).resolve().parents[1]
SEED = REPO.parent / "shared" / "data" / "seed-sample" / "ocsf_logs.parquet"
WORK = Path(tempfile.gettempdir()) / "ocsf-ray-bench"
SHARD_ROWS = 250_000


def build_input(events: int) -> Path:
    """N events as Parquet shards: the seed sample repeated, each copy later by the sample's span."""
    folder = WORK / f"events-{events}"
    if (folder / "_complete").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    seed = pl.read_parquet(SEED)
    span = seed["time"].max() - seed["time"].min() + 1  # +1 ms: copies never share a timestamp
    for shard, start in enumerate(range(0, events, SHARD_ROWS)):
        stop = min(start + SHARD_ROWS, events)
        copies = range(start // seed.height, math.ceil(stop / seed.height))
        rows = pl.concat([seed.with_columns(pl.col("time") + k * span) for k in copies])
        offset = start - copies[0] * seed.height
        rows.slice(offset, stop - start).write_parquet(folder / f"events-{shard:04d}.parquet")
    (folder / "_complete").write_text(str(events))
    return folder


def stage(name: str) -> None:
    print(f"stage {name}", flush=True)  # the parent attributes memory samples to this stage


def run_ray(source: Path, out: Path, profile: bool) -> dict:
    import ray
    from ocsf_ray.features import featurize_archive
    from ocsf_ray.features.pipeline import fit_family, write_features
    from ocsf_ray.features.spec import FeatureOptions, save_specs
    from ocsf_ray.io import read_events
    from ocsf_ray.runtime import start_ray

    t0 = time.perf_counter()
    start_ray(num_cpus=4)
    t1 = time.perf_counter()
    stage("ingest")
    archive = read_events([str(source)], str(out))
    t2 = time.perf_counter()
    times = {"ingest_s": t2 - t1}
    if profile:  # featurize_archive's own two steps, timed apart
        specs, times["fit_s"], times["transform_write_s"] = {}, 0.0, 0.0
        for family in archive.families:
            stage("fit")
            t = time.perf_counter()
            specs[family] = fit_family(archive, family, FeatureOptions())
            times["fit_s"] += time.perf_counter() - t
            stage("transform")
            t = time.perf_counter()
            write_features(archive, family, specs[family], str(out))
            times["transform_write_s"] += time.perf_counter() - t
        save_specs(specs, str(out / "feature_spec.json"))
    else:
        stage("featurize")
        featurize_archive(archive, str(out))
    t3 = time.perf_counter()
    ray.shutdown()
    return {"seconds": t3 - t1, "startup_s": t1 - t0, "featurize_s": t3 - t2, **times,
            "events": archive.accepted, "rejected": archive.rejected}


def run_polars(source: Path, out: Path) -> dict:
    from ocsf_ray.features import extract, fit_spec
    from ocsf_ray.io import IngestOptions, canonicalize, plan_chunks, read_chunk, resolve_inputs

    t0 = time.perf_counter()
    parts = []
    for chunk in plan_chunks(resolve_inputs([str(source)])):
        flat, _ = read_chunk(chunk)
        parts.append(canonicalize(flat, chunk.file.uri, IngestOptions())[0])
    events = pl.concat(parts, how="diagonal_relaxed")
    del parts
    t1 = time.perf_counter()
    fit_s = 0.0
    for (family,), frame in events.partition_by("family", as_dict=True).items():
        t = time.perf_counter()
        spec = fit_spec(frame, family)
        fit_s += time.perf_counter() - t
        (out / "features" / family).mkdir(parents=True, exist_ok=True)
        extract(frame, spec).write_parquet(out / "features" / family / "part-0.parquet")
    t2 = time.perf_counter()
    return {"seconds": t2 - t0, "ingest_s": t1 - t0, "fit_s": fit_s, "transform_write_s": t2 - t1 - fit_s,
            "events": events.height}


def run_pandas(source: Path, out: Path, spec_path: Path) -> dict:
    import pandas as pd
    from sklearn.preprocessing import LabelEncoder, StandardScaler

    families = json.loads(spec_path.read_text())["families"].values()
    spec_categorical = sorted({c["column"] for f in families for c in f["categorical"]})
    spec_numeric = sorted({n["column"] for f in families for n in f["numeric"]})
    t0 = time.perf_counter()
    df = pd.read_parquet(source)
    categorical = [c for c in spec_categorical if c in df.columns]  # the others exist only inside JSON text
    numeric = [c for c in spec_numeric if c in df.columns]
    features = pd.DataFrame(index=df.index)
    for column in categorical:
        features[column] = LabelEncoder().fit_transform(df[column].astype(str))
    features[numeric] = StandardScaler().fit_transform(df[numeric].fillna(0))
    moment = pd.to_datetime(df["time"], unit="ms")
    features["hour"], features["day_of_week"] = moment.dt.hour, moment.dt.dayofweek
    out.mkdir(parents=True, exist_ok=True)
    features.to_parquet(out / "features.parquet")
    return {"seconds": time.perf_counter() - t0, "events": len(df), "columns": f"{len(categorical)} of "
            f"{len(spec_categorical)} categorical, {len(numeric)} of {len(spec_numeric)} numeric"}


def child(args: argparse.Namespace) -> None:
    source, out = build_input(args.events), WORK / f"out-{args.events}"
    load = os.getloadavg()[0]  # other work on the machine shows here
    shutil.rmtree(out / args.only, ignore_errors=True)
    if args.only == "ray":
        result = run_ray(source, out / "ray", args.profile)
    elif args.only == "polars":
        result = run_polars(source, out / "polars")
    else:
        result = run_pandas(source, out / "pandas", out / "ray" / "feature_spec.json")
    result |= {"events_per_s": result["events"] / result["seconds"], "start_load": load,
               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    print(json.dumps(result), flush=True)


class TreeMemory:
    """Per stage: peak RSS of the driver, summed RSS of Ray workers and of Ray's other processes,
    and the largest worker."""

    def __init__(self, root: int) -> None:
        self.root, self.stage = psutil.Process(root), "startup"
        self.began, self.peaks = {"startup": time.perf_counter()}, {}

    def sample(self, log) -> None:
        for line in log.readlines():
            if line.startswith("stage "):
                self.stage = line[6:].strip()
                self.began[self.stage] = time.perf_counter()
        workers, others, driver = [], [], 0.0
        for proc in self.root.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                is_worker = "".join(proc.cmdline()[:1]).startswith("ray::")
                (workers if is_worker else others).append(proc.memory_info().rss / 2**20)
        with contextlib.suppress(psutil.Error):
            driver = self.root.memory_info().rss / 2**20
        now = {"driver_rss_mb": driver, "workers_rss_mb": sum(workers), "ray_system_rss_mb": sum(others),
               "largest_worker_rss_mb": max(workers, default=0.0)}
        seen = self.peaks.setdefault(self.stage, now)
        self.peaks[self.stage] = {k: max(v, seen[k]) for k, v in now.items()}

    def summary(self) -> dict:
        ends = [*list(self.began.values())[1:], time.perf_counter()]
        keys = next(iter(self.peaks.values()))
        overall = {f"{k[:-3]}_peak_mb": max(p[k] for p in self.peaks.values()) for k in keys}
        return {"stage_seconds": {k: end - b for (k, b), end in zip(self.began.items(), ends)},
                "stage_peaks": self.peaks, **overall}


def run_child(path: str, args: argparse.Namespace) -> dict:
    """Run one path in its own process; stop it (its Ray included) if memory runs short."""
    command = [sys.executable, __file__, "--only", path, "--events", str(args.events)]
    with open(WORK / f"{path}-{args.events}.log", "w+") as log, open(log.name) as follow:
        proc = subprocess.Popen(command + ["--profile"] * args.profile, stdout=log, stderr=subprocess.STDOUT,
                                text=True, cwd=REPO)
        memory, aborted = TreeMemory(proc.pid), None
        while proc.poll() is None and not aborted:
            time.sleep(0.2)
            memory.sample(follow)
            if psutil.virtual_memory().available < args.min_free_gb * 2**30:
                aborted = f"stopped in stage {memory.stage}: under {args.min_free_gb} GiB of memory available"
                for proc_ in [*memory.root.children(recursive=True), memory.root]:
                    with contextlib.suppress(psutil.Error):
                        proc_.kill()
        proc.wait()
        log.seek(0)
        lines = log.read().strip().splitlines()
    tree = memory.summary() if path == "ray" and memory.peaks else {}
    results = [line for line in lines if line.startswith("{")]
    if aborted:
        return {"aborted": aborted, "log": log.name, **tree}
    if proc.returncode != 0 or not results:
        sys.exit(f"{path} failed:\n" + "\n".join(lines[-40:]))
    return json.loads(results[-1]) | tree


def show(path: str, run: dict) -> None:
    if "aborted" in run:
        print(f"{path:>7}: {run['aborted']} (log: {run['log']})")
    else:
        print(f"{path:>7}: {run['seconds']:7.1f} s {run['events_per_s']:>9,.0f} events/s   "
              f"peak RSS {run['peak_rss_mb']:,.0f} MB   load at start {run['start_load']:.1f}")
    for name, peak in run.get("stage_peaks", {}).items():
        print(f"{'':9}{name:<10}{run['stage_seconds'][name]:6.1f} s   driver {peak['driver_rss_mb']:,.0f} MB, "
              f"Ray workers {peak['workers_rss_mb']:,.0f} MB"
              f" (largest {peak['largest_worker_rss_mb']:,.0f}), other Ray processes {peak['ray_system_rss_mb']:,.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--paths", default="ray,polars,pandas", help="comma-separated; ray runs first")
    parser.add_argument("--profile", action="store_true", help="time the Ray path's fit and transform apart")
    parser.add_argument("--repeats", type=int, default=1, help="rounds; each path's fastest run counts")
    parser.add_argument("--min-free-gb", type=float, default=2.0, help="stop a run below this available memory")
    parser.add_argument("--only", choices=["ray", "polars", "pandas"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not SEED.exists():
        print(f"seed sample not found at {SEED} (../shared is missing): nothing to benchmark")
        return
    if args.only:
        return child(args)
    paths = [p for p in ("ray", "polars", "pandas") if p in args.paths.split(",")]
    build_input(args.events)
    print(f"input: {args.events:,} events under {WORK / f'events-{args.events}'}")
    runs: dict[str, list[dict]] = {path: [] for path in paths}
    for _ in range(args.repeats):  # interleaved: a burst of outside load hits one run, not one path
        for path in paths:
            if path == "pandas" and not (WORK / f"out-{args.events}" / "ray" / "feature_spec.json").exists():
                print(" pandas: skipped: it takes its columns from a finished Ray run's feature_spec.json")
                continue
            runs[path].append(run_child(path, args))
            show(path, runs[path][-1])
    results = {}
    for path, done in runs.items():
        finished = [r for r in done if "aborted" not in r]
        if finished:  # time from the fastest run, memory from the largest
            best = min(finished, key=lambda r: r["seconds"])
            results[path] = best | {k: max(r[k] for r in finished) for k in best if k.endswith("_mb")}
        elif done:
            results[f"{path}_aborted"] = done[0]
    ratios = {f"ray_vs_{base}": results[base]["seconds"] / results["ray"]["seconds"]
              for base in ("pandas", "polars") if base in results and "ray" in results}
    for name, target in (("ray_vs_pandas", 5.0), ("ray_vs_polars", 0.7)):
        if name in ratios:
            print(f"{name}: {ratios[name]:.2f}x ({'meets' if ratios[name] >= target else 'MISSES'} target {target}x)")
    print(json.dumps({"bench": "featurize", "events": args.events, "cpus": os.cpu_count(), "repeats": args.repeats,
                      "date": time.strftime("%Y-%m-%d"), **results, **ratios}))


if __name__ == "__main__":
    main()
