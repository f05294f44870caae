"""Synth generation speed and memory, against a named baseline measured in the same run.

Baseline "sequential": the same shards generated one after another in this process
by calling `generate_shard` directly, no Ray. The Ray run must write the very same
bytes, which this script checks too.

    python bench/synth.py [--events 1000000] [--services 8] [--incidents 6] [--days 1]
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import threading
import time
from pathlib import Path

import psutil
import ray

from ocsf_ray.synth import SynthConfig, generate_archive, generate_shard, plan_world
from ocsf_ray.synth.archive import merge_labels, prepare_output, write_ground_truth


class PeakRss:
    """Peak resident memory of this process and all its descendants (Ray's raylet,
    workers and object store included), sampled every 100 ms."""

    def __init__(self) -> None:
        self.total = self.largest = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(0.1):
            sizes = []
            for p in [me, *me.children(recursive=True)]:
                try:
                    sizes.append(p.memory_info().rss)
                except psutil.Error:
                    pass
            self.total, self.largest = max(self.total, sum(sizes)), max(self.largest, max(sizes))

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def sequential(config: SynthConfig) -> int:
    """The baseline: every shard in turn in this process, then the same ground truth."""
    prepare_output(config.out, config.overwrite)
    world = plan_world(config)
    results = [generate_shard(world, shard) for shard in world.shards]
    merge_labels(config.out / "ground_truth")
    write_ground_truth(world, results)
    return sum(sum(r.events.values()) for r in results)


def digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--services", type=int, default=8)
    parser.add_argument("--incidents", type=int, default=6)
    parser.add_argument("--days", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", default="parquet")
    parser.add_argument("--out", default=None, help="where to write (default: a temporary folder)")
    args = parser.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="synth-bench-"))
    make = lambda name: SynthConfig(  # noqa: E731
        out=root / name, events=args.events, services=args.services, incidents=args.incidents,
        days=args.days, seed=args.seed, format=args.format, overwrite=True)

    with PeakRss() as base_rss:
        started = time.perf_counter()
        n_base = sequential(make("sequential"))
        base_s = time.perf_counter() - started

    with PeakRss() as ray_rss:
        ray.init(include_dashboard=False, log_to_driver=False)
        cpus = int(ray.cluster_resources().get("CPU", 0))
        started = time.perf_counter()
        summary = generate_archive(make("ray"))
        ray_s = time.perf_counter() - started
        ray.shutdown()

    size = sum(p.stat().st_size for p in (root / "ray").rglob("*") if p.is_file())
    same = digest(root / "ray") == digest(root / "sequential")
    print(f"events            {summary.total_events:,} ({args.format}, {args.services} services, "
          f"{args.incidents} incidents, {args.days:g} days, {summary.files} event files, {size / 2**20:,.0f} MiB)")
    print(f"sequential        {n_base / base_s:,.0f} events/s  ({base_s:.1f} s, peak RSS {base_rss.total / 2**20:,.0f} MiB)")
    print(f"ray ({cpus} CPUs)      {summary.total_events / ray_s:,.0f} events/s  ({ray_s:.1f} s, peak RSS "
          f"{ray_rss.total / 2**20:,.0f} MiB all processes, {ray_rss.largest / 2**20:,.0f} MiB largest)")
    print(f"ratio             {base_s / ray_s:.2f}x the sequential baseline")
    print(f"identical bytes   {same}")


if __name__ == "__main__":
    main()
