"""FAISS search, self and time exclusion, calibration: the scoring core without Ray."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from ocsf_ray.index.calibration import Calibration
from ocsf_ray.index.options import IndexOptions
from ocsf_ray.index.reference import FamilyIndex, TimeShards, build_shards
from ocsf_ray.index.search import build_index, mean_distance


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def clustered(n: int, dim: int = 16, clusters: int = 50, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    return unit(centres[rng.integers(0, clusters, n)] + 0.05 * rng.normal(size=(n, dim)))


def family_index(vectors: np.ndarray, times: np.ndarray, options: IndexOptions) -> FamilyIndex:
    order = np.argsort(times, kind="stable")
    vectors, times = vectors[order], times[order]
    reference = pl.DataFrame({"metadata_uid": [f"r{i}" for i in range(len(times))], "time": times})
    shards = TimeShards.plan(times, options.exclusion_minutes)
    indexes, info = build_shards(vectors, shards, options)
    return FamilyIndex("f", indexes, indexes, shards, reference, None, info, options, vectors, vectors)


def test_an_event_of_the_reference_is_not_its_own_neighbour():
    vectors = clustered(500)
    built = family_index(vectors, np.zeros(500, np.int64), IndexOptions(k=5, exclusion_minutes=0))
    uids = built.reference.get_column("metadata_uid")
    distances, ids = built.search(vectors, uids, np.zeros(500, np.int64))
    assert not (ids == np.arange(500)[:, None]).any()
    assert (distances > 0).all()
    # the same vectors under new identities (new events) do find their twins at distance 0
    fresh = pl.Series([f"new{i}" for i in range(500)])
    distances, ids = built.search(vectors, fresh, np.zeros(500, np.int64))
    assert (ids[:, 0] == np.arange(500)).all() and np.allclose(distances[:, 0], 0, atol=1e-3)


def test_duplicated_normal_events_keep_scores_low_and_finite():
    """200 exact copies of one event: each copy's neighbours are its twins (distance 0),
    and nothing else's score moves to infinity or NaN (unlike LOF's density ratios)."""
    rng = np.random.default_rng(1)
    vectors = np.concatenate([clustered(800), np.repeat(clustered(1, seed=5), 200, axis=0)])
    built = family_index(vectors, rng.integers(0, 10, len(vectors)), IndexOptions(k=20, exclusion_minutes=0))
    uids = built.reference.get_column("metadata_uid")
    scores = mean_distance(built.search(unit(vectors), uids, np.zeros(len(vectors), np.int64))[0])
    assert np.isfinite(scores).all()
    assert np.sort(scores)[:200].max() < 1e-3  # the copies score 0, not +inf
    assert np.median(scores) < 0.2


def test_neighbours_never_come_from_the_hours_around_the_event():
    """A burst of 100 identical events in one hour: with the exclusion zone their
    neighbours lie at least an hour away, so the burst scores far above normal events."""
    rng = np.random.default_rng(2)
    hour = 3_600_000
    normal = clustered(2000, seed=3)
    times = rng.integers(0, 24 * hour, 2000)
    burst = np.repeat(unit(rng.normal(size=(1, 16))), 100, axis=0)
    vectors = np.concatenate([normal, burst])
    times = np.concatenate([times, 12 * hour + rng.integers(0, hour // 2, 100)])
    for minutes, burst_is_outlier in ((60, True), (0, False)):
        built = family_index(vectors, times, IndexOptions(k=20, exclusion_minutes=minutes))
        order = np.argsort(times, kind="stable")
        sorted_times = times[order]
        distances, ids = built.search(vectors[order], built.reference.get_column("metadata_uid"), sorted_times)
        scores = mean_distance(distances)
        if minutes:
            gap = np.abs(sorted_times[:, None] - sorted_times[np.clip(ids, 0, None)])
            assert (gap[ids >= 0] >= hour).all()
        burst_score = np.median(scores[order >= 2000])
        assert (burst_score > np.quantile(scores, 0.95)) == burst_is_outlier


def test_short_references_do_not_exclude_anything():
    shards = TimeShards.plan(np.arange(0, 2 * 3_600_000, 1000), exclusion_minutes=60)
    assert shards.width_ms == 0 and shards.radius == -1 and shards.bounds == (0, 7200)


def test_ivf_is_built_beyond_exact_max_and_reports_its_recall():
    vectors = clustered(20_000, dim=32, clusters=200)
    index, info = build_index(vectors, IndexOptions(k=20, exact_max=5000, nprobe=16, recall_sample=300))
    assert info.kind == "ivf_flat" and info.nlist == int(4 * np.sqrt(20_000))
    assert 0.9 <= info.recall_at_k <= 1.0
    flat, flat_info = build_index(vectors[:1000], IndexOptions(exact_max=5000))
    assert flat_info.kind == "flat" and flat_info.recall_at_k is None


def test_calibration_orders_scores_and_keeps_the_tail_strict():
    rng = np.random.default_rng(4)
    reference = rng.gamma(2.0, 0.1, 10_000)
    calibration = Calibration.fit(reference)
    assert calibration.percentile(np.quantile(reference, [0.5]))[0] == pytest.approx(50, abs=0.5)
    extreme = np.array([reference.max() * 2, reference.max() * 3])
    percentiles = calibration.percentile(extreme)
    assert 99 < percentiles[0] < percentiles[1] < 100  # no tie at 100 beyond the reference
    grid = np.linspace(0, reference.max() * 4, 2000)
    surprise = calibration.surprise(grid)
    assert (np.diff(surprise) >= -1e-12).all()  # monotone across the body/tail seam
    assert Calibration.from_dict(calibration.to_dict()) == calibration


def test_neighbour_distances_are_exact_whatever_the_batching():
    """FAISS returns float32 |q|^2 + |r|^2 - 2 q.r, which for close pairs far from the
    origin is off by more than the score's tolerance and depends on the query batch; the
    distances returned are the float64 Euclidean ones, alone or in a batch of 500."""
    vectors = clustered(3000, seed=6) + 20  # far from the origin, close to each other
    built = family_index(vectors, np.zeros(3000, np.int64), IndexOptions(k=20, exclusion_minutes=0))
    queries = clustered(500, seed=7) + 20
    uids = pl.Series([f"q{i}" for i in range(500)])
    times = np.zeros(500, np.int64)
    together, ids = built.search(queries, uids, times)
    exact = np.linalg.norm(queries[:, None, :].astype(np.float64) - built.embeddings[ids].astype(np.float64), axis=2)
    assert np.abs(together - exact).max() < 1e-12
    alone = np.concatenate([built.search(queries[i:i + 1], uids[i:i + 1], times[i:i + 1])[0] for i in range(500)])
    assert np.array_equal(mean_distance(together), mean_distance(alone))
