"""FAISS k-NN search: exact or IVF indexes, on every GPU present or on the CPU.

Embeddings are unit-norm, so L2 distance orders neighbours as cosine similarity does;
distances are reported as Euclidean (square roots of FAISS' squared L2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import faiss
import numpy as np

from ocsf_ray.index.options import IndexOptions


@dataclass
class IndexInfo:
    """What was built for a reference: index kind (flat or IVF), rows, nlist, nprobe and measured recall@k."""

    kind: str  # "flat", "ivf_flat" or "ivf_pq"
    vectors: int
    nlist: int = 0
    nprobe: int = 0
    recall_at_k: float | None = None  # measured against exact search when approximate

    def to_dict(self) -> dict:
        """JSON-ready fields."""
        return dict(self.__dict__)


def build_index(vectors: np.ndarray, options: IndexOptions) -> tuple[faiss.Index, IndexInfo]:
    """An exact index up to `options.exact_max` vectors, else a trained IVF index whose
    recall@k against exact search is measured on a sample and recorded."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    if n <= options.exact_max:
        index = faiss.IndexFlatL2(dim)
        index.add(vectors)
        return index, IndexInfo("flat", n)
    nlist = options.nlist or int(4 * math.sqrt(n))
    quantizer = faiss.IndexFlatL2(dim)
    if options.pq_m:
        index, kind = faiss.IndexIVFPQ(quantizer, dim, nlist, options.pq_m, 8), "ivf_pq"
    else:
        index, kind = faiss.IndexIVFFlat(quantizer, dim, nlist), "ivf_flat"
    rng = np.random.default_rng(options.seed)
    train = vectors[rng.choice(n, size=min(n, 64 * nlist), replace=False)]  # 30-256 per cell is enough
    index.train(train)
    index.add(vectors)
    index.nprobe = options.nprobe
    info = IndexInfo(kind, n, nlist, options.nprobe)
    queries = vectors[rng.choice(n, size=min(n, options.recall_sample), replace=False)]
    info.recall_at_k = recall_at_k(index, vectors, queries, options.k)
    return index, info


def recall_at_k(index: faiss.Index, vectors: np.ndarray, queries: np.ndarray, k: int) -> float:
    """Share of the exact k nearest neighbours that the index also returns."""
    exact = faiss.IndexFlatL2(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(queries, k)
    _, found = index.search(queries, k)
    return neighbour_recall(truth, found)


def neighbour_recall(truth: np.ndarray, found: np.ndarray) -> float:
    """Recall@k: the share of the true k nearest ids (`truth`, [queries, k]) that `found`
    ([queries, k]) also returns, over every query."""
    return float((truth[:, :, None] == found[:, None, :]).any(axis=2).mean())


def on_best_device(index: faiss.Index) -> faiss.Index:
    """The index replicated on every GPU FAISS sees; the CPU index itself when none."""
    if faiss.get_num_gpus() > 0:
        return faiss.index_cpu_to_all_gpus(index)
    return index


def search(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(Euclidean distances [n, k], reference row ids [n, k]) of each query's k nearest."""
    squared, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return np.sqrt(np.clip(squared, 0, None)), ids


def exact_distances(queries: np.ndarray, reference: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Euclidean distances of each query to its found reference rows, recomputed in
    float64 from the vectors. FAISS computes |q|^2 + |r|^2 - 2 q.r in float32, whose
    cancellation error for close pairs depends on how queries were batched; recomputing
    makes a score the same whichever batch (or server) it came from."""
    out = np.full(ids.shape, np.nan)
    for j in range(ids.shape[1]):
        found = ids[:, j] >= 0
        diff = queries[found].astype(np.float64) - reference[ids[found, j]].astype(np.float64)
        out[found, j] = np.sqrt((diff * diff).sum(axis=1))
    return out


def search_excluding(shards: list[faiss.Index], bounds: np.ndarray, queries: np.ndarray, query_shard: np.ndarray,
                     query_keys: np.ndarray, reference_keys: np.ndarray, k: int,
                     radius: int, reference: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest reference rows of each query that are neither the query itself nor
    in a time shard within `radius` shards of the query's.

    The reference is split into time shards (`bounds[j]:bounds[j + 1]` are shard j's row
    ids); each shard is searched only by the queries it may answer and the results are
    merged into a running top-k, so memory stays O(queries x k) however many shards.
    A neighbour whose key (hashed metadata_uid) equals the query's is the event itself;
    matching by key, not by a zero distance, keeps exact duplicates as neighbours.
    Missing neighbours (too small a reference) come back as NaN / -1. With `reference`
    (the indexed vectors, row-aligned), 2k candidates are re-ranked on exact distances,
    so that float32 near-ties cannot change which k neighbours count.
    """
    n = len(queries)
    fetch = k if reference is None else 2 * k  # candidates to re-rank exactly: float32 near-ties
    best_d, best_i = np.full((n, fetch), np.inf, np.float32), np.full((n, fetch), -1, np.int64)
    for j, shard in enumerate(shards):
        rows = np.flatnonzero(np.abs(query_shard - j) > radius)
        if shard.ntotal == 0 or rows.size == 0:
            continue
        distances, ids = search(shard, queries[rows], min(fetch + 1, shard.ntotal))
        ids = np.where(ids >= 0, ids + bounds[j], -1)
        self_match = reference_keys[np.clip(ids, 0, None)] == query_keys[rows, None]
        distances = np.where((ids < 0) | self_match, np.inf, distances)
        merged_d = np.concatenate([best_d[rows], distances], axis=1)
        merged_i = np.concatenate([best_i[rows], ids], axis=1)
        order = np.argsort(merged_d, axis=1, kind="stable")[:, :fetch]
        best_d[rows] = np.take_along_axis(merged_d, order, axis=1)
        best_i[rows] = np.take_along_axis(merged_i, order, axis=1)
    best_i = np.where(np.isfinite(best_d), best_i, -1)
    if reference is None:
        return np.where(best_i >= 0, best_d, np.nan), best_i
    exact = exact_distances(queries, reference, best_i)
    order = np.argsort(np.where(best_i >= 0, exact, np.inf), axis=1, kind="stable")[:, :k]
    return np.take_along_axis(exact, order, axis=1), np.take_along_axis(best_i, order, axis=1)


def mean_distance(distances: np.ndarray) -> np.ndarray:
    """The k-NN anomaly score: mean distance to the kept neighbours."""
    return np.nanmean(distances, axis=1).astype(np.float32)
