"""k-NN scoring throughput: our FAISS path (exact and IVF) against scikit-learn brute force.

Baseline: scikit-learn `NearestNeighbors(algorithm="brute", n_jobs=-1)`, which is what
algorithm="auto" picks for 64-d vectors (trees only pay off below ~16 dimensions).
Ours: `build_index` + `on_best_device`, then `search_excluding` (k + 1 neighbours, the
query itself dropped) + `mean_distance`: the scorer's path on one time shard, with an
exact IndexFlatL2 and with IVF-Flat at several nprobe values. Every method ends at the same
anomaly score (mean distance to the k nearest); recall@k is measured against the exact
FAISS results on the same queries. scikit-learn is timed on a subset of the queries: queries/s is a rate, so the
subset is fair. scikit-learn and IVF timings are the fastest of --repeats runs (the machine
may be shared); the exact search runs once, on all queries, as the ground truth.
Threads: FAISS keeps its OpenMP default (all cores); scikit-learn n_jobs=-1 (its float32
brute kneighbors runs on OpenMP threads over all cores either way).

Data: random unit vectors have no cluster structure, which no real embedding lacks, and
make IVF recall collapse. Instead: a mixture of 2,000 Gaussian clusters (uneven sizes and
widths) in a 16-d latent space, mapped to --dim by a random linear map, plus small noise,
then L2-normalised like our embeddings; queries are independent draws from the same
mixture, not copies of references. Seeded. `--embeddings FILE.npy` uses real rows instead.

    python bench/knn.py                         # 1M references, 100k queries, 64-d, k=20
    python bench/knn.py --reference 200000 --queries 20000 --nprobe 8,16,32
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

import faiss
import numpy as np
from sklearn.neighbors import NearestNeighbors

from ocsf_ray.index.options import IndexOptions
from ocsf_ray.index.search import build_index, mean_distance, neighbour_recall, on_best_device, search_excluding

TARGET_RATIO, TARGET_RECALL = 10.0, 0.95


def unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def mixture(sizes: list[int], dim: int, seed: int, clusters: int = 2000, latent: int = 16) -> list[np.ndarray]:
    """Independent draws of each size from one seeded cluster mixture, unit-norm rows."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, latent), dtype=np.float32)
    widths = rng.uniform(0.2, 0.6, clusters).astype(np.float32)
    weights = rng.dirichlet(np.ones(clusters))
    mapping = rng.standard_normal((latent, dim), dtype=np.float32) / np.sqrt(latent)
    draws = []
    for n in sizes:
        cluster = rng.choice(clusters, size=n, p=weights)
        z = centres[cluster] + widths[cluster, None] * rng.standard_normal((n, latent), dtype=np.float32)
        draws.append(unit(z @ mapping + 0.05 * rng.standard_normal((n, dim), dtype=np.float32)))
    return draws


def fastest(repeats: int, run) -> tuple[float, np.ndarray]:
    """(seconds of the fastest of `repeats` calls of `run`, its result)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best, result


def scorer(index, queries: np.ndarray, k: int):
    """The scorer's path on `queries`, one time shard: `search_excluding` (k + 1 nearest,
    self-matches by key dropped; none here) → `mean_distance`; returns the neighbours' ids.
    Moving the index to the GPUs, if any, is not timed."""
    shards, n = [on_best_device(index)], index.ntotal
    bounds, query_shard = np.array([0, n]), np.zeros(len(queries), np.int64)
    query_keys, reference_keys = -1 - np.arange(len(queries)), np.arange(n)  # disjoint: queries are new events

    def run() -> np.ndarray:
        distances, ids = search_excluding(shards, bounds, queries, query_shard, query_keys, reference_keys, k, -1)
        mean_distance(distances)
        return ids
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--nprobe", default="8,16,32,64", help="comma-separated; IVF is searched at each")
    parser.add_argument("--nlist", type=int, default=0, help="IVF cells (0: build_index's 4 * sqrt(n))")
    parser.add_argument("--sklearn-queries", type=int, default=2_000)
    parser.add_argument("--embeddings", help="a .npy of real embeddings [rows, dim] to use instead")
    parser.add_argument("--repeats", type=int, default=3, help="scikit-learn and IVF timings: fastest of N")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    k, nprobes = args.k, sorted(int(p) for p in args.nprobe.split(","))
    if args.embeddings:
        data = np.load(args.embeddings, mmap_mode="r")
        order = np.random.default_rng(args.seed).permutation(len(data))
        queries = unit(data[np.sort(order[:args.queries])])
        reference = unit(data[np.sort(order[args.queries:args.queries + args.reference])])
        source = args.embeddings
    else:
        reference, queries = mixture([args.reference, args.queries], args.dim, args.seed)
        source = "2,000-cluster Gaussian mixture, 16-d latent, seeded"
    n, sub = len(reference), min(args.sklearn_queries, len(queries))
    print(f"data: {source}; {n:,} references, {len(queries):,} queries, {reference.shape[1]}-d, k={k}")
    print(f"threads: faiss OpenMP {faiss.omp_get_max_threads()}, scikit-learn n_jobs=-1 ({os.cpu_count()} cores); "
          f"GPUs: {faiss.get_num_gpus()}; load at start {os.getloadavg()[0]:.1f}")
    auto = NearestNeighbors(n_neighbors=k).fit(reference)._fit_method
    print(f'scikit-learn algorithm="auto" picks {auto!r} for {reference.shape[1]}-d', flush=True)

    started = time.perf_counter()
    baseline = NearestNeighbors(n_neighbors=k, algorithm="brute", n_jobs=-1).fit(reference)
    sk_built = time.perf_counter() - started

    def run_baseline() -> np.ndarray:
        distances, ids = baseline.kneighbors(queries[:sub])
        distances.mean(axis=1)
        return ids
    sk_seconds, sk_ids = fastest(args.repeats, run_baseline)

    started = time.perf_counter()
    exact, _ = build_index(reference, IndexOptions(k=k, exact_max=n))
    built = time.perf_counter() - started
    seconds, truth = fastest(1, scorer(exact, queries, k))  # once: all queries, the costliest run
    del exact
    rows = [("scikit-learn brute", sk_built, sub, sk_seconds, neighbour_recall(truth[:sub], sk_ids)),  # (method, build s,
            ("FAISS IndexFlatL2 (exact)", built, len(queries), seconds, 1.0)]  # queries timed, seconds, recall)

    started = time.perf_counter()
    ivf, info = build_index(reference, IndexOptions(k=k, exact_max=0, nlist=args.nlist, nprobe=nprobes[0]))
    built = time.perf_counter() - started
    print(f"IVF-Flat nlist={info.nlist}: built in {built:.1f} s; build_index's own recall check: "
          f"{info.recall_at_k:.3f} at nprobe={nprobes[0]} on {IndexOptions().recall_sample} reference rows", flush=True)
    for nprobe in nprobes:
        ivf.nprobe = nprobe
        seconds, found = fastest(args.repeats, scorer(ivf, queries, k))
        rows.append((f"FAISS IVF-Flat nlist={info.nlist} nprobe={nprobe}", built, len(queries), seconds,
                     neighbour_recall(truth, found)))

    base_rate = sub / sk_seconds
    print(f"\nscikit-learn timed on {sub:,} of the {len(queries):,} queries (queries/s is a rate, so this is "
          f"fair); FAISS on all. IVF build = k-means + add + build_index's recall check.")
    print(f"| method | build s | queries timed | queries/s | recall@{k} | vs scikit-learn |")
    print("|---|---:|---:|---:|---:|---:|")
    for method, built, timed, seconds, found in rows:
        rate = timed / seconds
        print(f"| {method} | {built:.1f} | {timed:,} | {rate:,.0f} | {found:.3f} | {rate / base_rate:.1f}x |")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak_mb:,.0f} MB")
    print(json.dumps({"bench": "knn", "source": source, "references": n, "queries": len(queries), "k": k,
                      "dim": reference.shape[1], "cpus": os.cpu_count(), "peak_rss_mb": peak_mb,
                      "rows": [dict(zip(("method", "build_s", "queries", "seconds", "recall"), r)) for r in rows]}))
    meeting = [r for r in rows[2:] if r[4] >= TARGET_RECALL]  # the smallest nprobe reaching the recall target
    method, _, timed, seconds, found = meeting[0] if meeting else max(rows[2:], key=lambda r: r[4])
    ratio = timed / seconds / base_rate
    verdict = "meets" if ratio >= TARGET_RATIO and found >= TARGET_RECALL else "MISSES"
    print(f"FAISS IVF ({method.rsplit(' ', 1)[1]}) vs scikit-learn brute: {ratio:.1f}x queries/s, "
          f"recall@{k} {found:.2f} ({verdict} target {TARGET_RATIO:.0f}x at recall@{k} >= {TARGET_RECALL})")


if __name__ == "__main__":
    main()
