"""Training throughput: Ray Train (1 and 2 workers) against a plain PyTorch loop.

Baseline: the same model, corruption and loss in one process, over the same feature
rows already in memory as tensors: the cost of Ray Train's data path (streaming
shards through Ray Data), DDP and reporting is the ratio between them.
Reported: samples/s inside the epoch loop (the figure the trainer reports), and the
wall time of the whole fit including worker start-up.

    python bench/train.py --features DIR [--family F] [--epochs 2]
DIR is a `featurize` output; by default the seed sample is featurized first.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import polars as pl
import torch

from ocsf_ray.train import TrainOptions, discover_features, train_family
from ocsf_ray.train.loop import _views
from ocsf_ray.train.model import ContrastiveModel
from ocsf_ray.train.trainer import model_config_for

SEED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "seed-sample", "ocsf_logs.parquet")


def plain_loop(features, options: TrainOptions) -> float:
    """Samples/s of a single-process loop over in-memory tensors."""
    categorical, numeric = features.columns
    frame = pl.concat([pl.read_parquet(f) for f in features.files])
    codes = torch.from_numpy(frame.select(categorical).to_numpy().astype(np.int64))
    numerics = torch.from_numpy(frame.select(numeric).to_numpy().astype(np.float32))
    torch.manual_seed(0)
    model = ContrastiveModel(model_config_for(features, options))
    optimizer = torch.optim.AdamW(model.parameters(), lr=options.learning_rate)
    rows, started = 0, time.perf_counter()
    for _ in range(options.epochs):
        order = torch.randperm(codes.shape[0])
        for start in range(0, codes.shape[0] - options.batch_size + 1, options.batch_size):
            index = order[start:start + options.batch_size]
            loss = _views(model, codes[index], numerics[index], options)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            rows += len(index)
    return rows / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features")
    parser.add_argument("--family")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    if not args.features:
        if not os.path.exists(SEED):
            print("no --features and no ../shared seed sample: nothing to measure")
            return
        args.features = "/tmp/ocsf-ray-bench-train"
        subprocess.run([sys.executable, "-m", "ocsf_ray.cli", "featurize", SEED, "--out", args.features], check=True)

    from ocsf_ray.runtime import start_ray

    start_ray(num_cpus=4)
    found = discover_features(args.features)
    features = found[args.family] if args.family else max(found.values(), key=lambda f: f.rows)
    options = TrainOptions(epochs=args.epochs, batch_size=args.batch_size, patience=args.epochs)
    torch.set_num_threads(2)
    baseline = plain_loop(features, options)
    figures = {"family": features.family, "rows": features.rows, "plain_pytorch_samples_per_s": baseline}
    for workers in (1, 2):
        started = time.perf_counter()
        run = train_family(features, f"/tmp/ocsf-ray-bench-runs-{time.time_ns()}", options, workers=workers)
        wall = time.perf_counter() - started
        speeds = [m["samples_per_s"] for m in run.history if m["epoch"] >= 0]
        figures[f"ray_{workers}w_samples_per_s"] = float(np.median(speeds))
        figures[f"ray_{workers}w_fit_wall_s"] = wall
        figures[f"ray_{workers}w_vs_plain"] = float(np.median(speeds)) / baseline
    for key, value in figures.items():
        print(f"{key:32s} {value:,.3f}" if isinstance(value, float) else f"{key:32s} {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
