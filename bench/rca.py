"""Root-cause ranking accuracy: our causal graph + PageRank against BARO, earliest onset, random.

For each seed: a synth archive (7 incidents, one of each kind, `--events` over
`--days`), then `run_rca` without anomaly scores (signals from errors, latency, volume
and metrics only, so the figure does not depend on a trained model). AC@1, AC@3 and
Avg@5 are pooled over every incident of every seed; the baselines rank the same
windows' signals in the same run. The figure is AC@1 as a ratio to BARO's.

    python bench/rca.py                      # seeds 1 2, 100k events over 12 h each
    python bench/rca.py --seeds 0 1 2 3 --events 200000 --days 1
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--days", type=float, default=0.5)
    parser.add_argument("--incidents", type=int, default=7)
    args = parser.parse_args()

    from ocsf_ray.io import read_events
    from ocsf_ray.rca import run_rca
    from ocsf_ray.rca.accuracy import METHODS
    from ocsf_ray.runtime import start_ray
    from ocsf_ray.synth import SynthConfig, generate_archive

    start_ray(num_cpus=4)
    pooled: dict[str, list] = {m: [] for m in METHODS}
    by_type: dict[str, dict[str, list]] = {}
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as root:
            archive_dir = os.path.join(root, "archive")
            generate_archive(SynthConfig(out=archive_dir, events=args.events, incidents=args.incidents,
                                         days=args.days, seed=seed))
            with open(os.path.join(archive_dir, "ground_truth", "incidents.json")) as handle:
                incidents = json.load(handle)
            started = time.perf_counter()
            archive = read_events([os.path.join(archive_dir, "events")], os.path.join(root, "out"))
            run = run_rca(archive, os.path.join(root, "out"), incidents=incidents)
            elapsed = time.perf_counter() - started
        found = run.evaluation
        print(f"seed {seed}: {len(run.windows)} windows, {elapsed:.0f} s (ingest + rca); "
              + ", ".join(f"{m} AC@1 {(found['method'] if m == 'method' else found['baselines'][m])['ac@1']:.2f}" for m in METHODS))
        for row in found["incidents"]:
            for m in METHODS:
                pooled[m].append(row[m]["ac@k"])
                by_type.setdefault(row["type"], {}).setdefault(m, []).append(row[m]["ac@k"])
    print(f"\n{len(pooled['method'])} incidents, {len(args.seeds)} seeds, {args.events:,} events / {args.days} days each")
    print(f"{'ranking':<16}{'AC@1':>7}{'AC@3':>7}{'Avg@5':>7}")
    summary = {}
    for m in METHODS:
        ac = np.array(pooled[m]).mean(axis=0)
        summary[m] = ac
        print(f"{'causal graph' if m == 'method' else m:<16}{ac[0]:>7.3f}{ac[2]:>7.3f}{ac.mean():>7.3f}")
    print(f"\nAC@1 per incident type ({', '.join(METHODS)}):")
    for kind, found in sorted(by_type.items()):
        print(f"  {kind:<26}" + "".join(f"{np.array(found[m]).mean(axis=0)[0]:>7.2f}" for m in METHODS))
    ratio = summary["method"][0] / max(summary["baro"][0], 1e-9)
    print(f"\nAC@1 causal graph / BARO = {ratio:.2f}x")


if __name__ == "__main__":
    main()
