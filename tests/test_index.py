"""FAISS search, self and time exclusion, calibration: the scoring core without Ray."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from ocsf_ray.features.spec import FIRST_CODE, CategoricalFeature, FeatureSpec, NumericFeature
from ocsf_ray.features.transform import feature_columns, feature_vectors
from ocsf_ray.index.calibration import Calibration, ScoreCalibration, fuse
from ocsf_ray.index.options import IndexOptions
from ocsf_ray.index.reference import FamilyIndex, TimeShards, build_shards
from ocsf_ray.index.scorer import fit_calibration, raw_terms
from ocsf_ray.index.search import build_index, mean_distance


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def clustered(n: int, dim: int = 16, clusters: int = 50, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    return unit(centres[rng.integers(0, clusters, n)] + 0.05 * rng.normal(size=(n, dim)))


SPEC = FeatureSpec("f", 0, (), (), None, None, 10.0, hour_of_day=False, day_of_week=False)


def family_index(vectors: np.ndarray, times: np.ndarray, options: IndexOptions) -> FamilyIndex:
    """An index over bare vectors (no features but the service windows, all zero)."""
    order = np.argsort(times, kind="stable")
    vectors, times = vectors[order], times[order]
    reference = pl.DataFrame({"metadata_uid": [f"r{i}" for i in range(len(times))], "time": times,
                              "service": "s"}).with_columns(pl.lit(0.0).alias(c) for c in feature_columns(SPEC)[1])
    shards = TimeShards.plan(times, options.exclusion_minutes)
    indexes, info = build_shards(vectors, shards, options)
    return FamilyIndex("f", indexes, indexes, shards, reference, None, info, options, vectors, vectors, SPEC)


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


def test_short_references_get_narrower_shards_and_tiny_ones_none():
    shards = TimeShards.plan(np.arange(0, 2 * 3_600_000 + 1, 1000), exclusion_minutes=60)
    assert shards.width_ms == 15 * 60_000 and shards.radius == 1 and len(shards.bounds) == 10
    shards = TimeShards.plan(np.arange(0, 5 * 60_000, 1000), exclusion_minutes=60)
    assert shards.width_ms == 0 and shards.radius == -1 and shards.bounds == (0, 300)


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


def test_anomalies_inside_the_reference_do_not_cap_their_own_surprise():
    """An unlabelled reference holds its anomalies: 2 % of it far out. The tail is placed by
    the body's quantiles, so they read as far rarer than their 2 % share (a tail fitted to
    the top 1 % would give them about -log10(0.02) = 1.7), and normal events keep theirs."""
    rng = np.random.default_rng(5)
    normal = rng.gamma(2.0, 0.1, 9_800)
    anomalies = rng.normal(3.0, 0.1, 200)
    calibration = Calibration.fit(np.concatenate([normal, anomalies]))
    assert calibration.surprise(anomalies).min() > 6
    assert np.median(calibration.surprise(normal)) == pytest.approx(np.log10(2), abs=0.05)


def test_a_short_tailed_reference_still_flags_its_top_percent():
    """A bounded term (uniform): the tail placed by the 90th and 97th percentiles would
    flag none of it at the 99th percentile; the empirical reading keeps the top 1 % there."""
    reference = np.random.default_rng(6).uniform(0, 1, 10_000)
    flagged = (Calibration.fit(reference).percentile(reference) >= 99).mean()
    assert flagged == pytest.approx(0.01, abs=0.002)


def test_terms_fuse_by_fishers_method_without_underflow():
    """The fused score is -log10 of Fisher's combined p-value (as scipy computes it), and
    stays finite and ordered where that p-value underflows a float."""
    from scipy.stats import combine_pvalues

    p = np.random.default_rng(3).uniform(1e-9, 1.0, (3, 200))
    fused = fuse({f"t{i}": -np.log10(p[i]) for i in range(3)})
    expected = [-np.log10(combine_pvalues(p[:, j], method="fisher").pvalue) for j in range(200)]
    np.testing.assert_allclose(fused, expected, rtol=1e-9)
    assert fuse({"only": np.array([0.0, 2.5])}) == pytest.approx([0.0, 2.5])
    extreme = fuse({"a": np.array([400.0, 500.0]), "b": np.array([400.0, 400.0])})
    assert np.isfinite(extreme).all() and 790 < extreme[0] < extreme[1]


def test_the_rarity_term_counts_equivalent_fields_once_and_only_beyond_the_rare_level():
    """A user's uid and name map one to one: stating the unseen user twice is not twice as
    rare, so adding the name column leaves the term unchanged; values more common than the
    1 % level add nothing; the calibration reads the term as log10 units, not fitted. (The
    numeric duration's natural extremes add their own part: tested below.)"""
    rng = np.random.default_rng(9)
    frame = templated_family(rng, 10_000)
    new = frame.get_column("metadata_uid").is_in([f"e{i}" for i in range(0, 10_000, 500)]).to_numpy()
    frame = frame.with_columns(pl.Series("cat__message", np.where(new, 21 + FIRST_CODE, frame.get_column("cat__message"))
                                         .astype(np.int32)))
    twin = TEMPLATED.categorical[0]
    doubled = FeatureSpec("f", 0, (twin, CategoricalFeature("name", "name", twin.vocabulary)), TEMPLATED.numeric,
                          None, None, 10.0, hour_of_day=False, day_of_week=False)
    terms = []
    for spec, rows in ((TEMPLATED, frame), (doubled, frame.with_columns(pl.col("cat__message").alias("cat__name")))):
        built, order = FamilyIndex.fit("f", rows, feature_vectors(rows, spec), spec, IndexOptions())
        assert list(built.rarity.groups) == [0] * len(spec.categorical)
        parts = built.rarity.contributions(built.field_rarity(built.reference))
        terms.append(parts[:, :len(spec.categorical)].sum(axis=1))  # the categoricals' part of the term
    assert np.array_equal(terms[0], terms[1])
    in_order = new[order]
    assert terms[0][in_order].min() > 1 and (terms[0][~in_order] == 0).all()
    raw = raw_terms(built, built.reference, built.embeddings)
    calibration = ScoreCalibration.from_dict(fit_calibration(raw).to_dict())
    assert calibration.surprises(raw)["rarity"] == pytest.approx(raw["rarity"] / np.log(10))


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


def templated_family(rng: np.random.Generator, n: int, hours: float = 2.0) -> pl.DataFrame:
    """Feature rows of a log family: 20 message templates (each at least 2 % of events),
    a scaled duration, 4 services, uniform times over `hours`; window features zero."""
    weights = rng.dirichlet(np.full(20, 5.0)) * 0.6 + 0.4 / 20  # each template 2-10 %
    spec_columns = feature_columns(TEMPLATED)[1]
    return pl.DataFrame({
        "metadata_uid": [f"e{i}" for i in range(n)],
        "time": np.sort(rng.integers(0, int(hours * 3_600_000), n)),
        "service": rng.choice(["api", "auth", "db", "web"], n),
        "cat__message": rng.choice(20, n, p=weights / weights.sum()).astype(np.int32) + FIRST_CODE,
    }).with_columns(pl.Series("num__duration", rng.normal(0, 1, n), dtype=pl.Float32),
                    *(pl.lit(0.0, pl.Float32).alias(c) for c in spec_columns if c != "num__duration"))


TEMPLATED = FeatureSpec("f", 0, (CategoricalFeature("message", "message", tuple(f"t{i}" for i in range(22))),),
                        (NumericFeature("duration", False, 0.0, 1.0, False),), None, None, 10.0,
                        hour_of_day=False, day_of_week=False)


def scored(frame: pl.DataFrame, options: IndexOptions = IndexOptions()) -> pl.DataFrame:
    """Each row's fused anomaly score, k-NN distance and field rarity, the rows being their own reference
    (as in `ocsf-ray run`), with the feature vectors standing in for a model's embeddings."""
    vectors = feature_vectors(frame, TEMPLATED)
    built, order = FamilyIndex.fit("f", frame, vectors, TEMPLATED, options)
    raw = raw_terms(built, built.reference, built.embeddings)
    calibration = fit_calibration(raw)
    return built.reference.select("metadata_uid").with_columns(
        pl.Series("score", calibration.combine(raw)), pl.Series("knn", raw["embedding"]),
        pl.Series("rarity", raw["rarity"]))


@pytest.mark.parametrize("count, burst_minutes", [(300, 10), (100, 120)])
def test_alike_anomalies_among_30k_events(count, burst_minutes):
    """Masking: slow events with a template never seen otherwise are each other's nearest
    neighbours (k = 20 < count). 300 of them in a 10-minute burst: the time exclusion and
    the field rarity put them on top of the fused score. 100 spread over the 2 hours (0.3 %
    of the family, rarer than the 1 % level and than every normal template): k-NN alone
    ranks them below normal events and the field rarity still ranks them on top; the fused
    sum does not (the rarity's 1.1 nats beyond the 1 % level weigh less than the normal
    events' own k-NN extremes): the documented limit of summing two blind terms."""
    rng = np.random.default_rng(7)
    normal = templated_family(rng, 30_000 - count)
    alike = normal.head(count).with_columns(
        pl.Series("metadata_uid", [f"a{i}" for i in range(count)]), pl.lit(21 + FIRST_CODE, pl.Int32).alias("cat__message"),
        pl.Series("num__duration", 2.5 + 0.05 * rng.normal(size=count), dtype=pl.Float32), pl.lit("api").alias("service"),
        pl.Series("time", np.sort(rng.integers(0, burst_minutes * 60_000, count)) + (burst_minutes == 10) * 3_600_000))
    result = scored(pl.concat([normal, alike.select(normal.columns)]))
    alike_rows = result.get_column("metadata_uid").str.starts_with("a").to_numpy()
    top = result.sort("score", descending=True).head(count).get_column("metadata_uid").str.starts_with("a").mean()
    if burst_minutes == 10:
        assert top >= 0.95
    else:
        assert roc_auc_score(alike_rows, result.get_column("knn")) < 0.5
        assert roc_auc_score(alike_rows, result.get_column("rarity")) > 0.99


def test_in_a_field_of_many_rare_values_only_the_rarest_count():
    """Client IPs: 3,000 values, each about 0.03 % of events. Every one is rarer than 1 %, but
    that is ordinary in this field: its level rises to its own 95th percentile of -ln p, so
    at most 5 % of normal events get any field rarity from it, while a template never seen
    still gets plenty."""
    rng = np.random.default_rng(11)
    frame = templated_family(rng, 10_000).with_columns(
        pl.Series("cat__ip", rng.integers(0, 3000, 10_000) + FIRST_CODE, dtype=pl.Int32))
    spec = FeatureSpec("f", 0, TEMPLATED.categorical + (CategoricalFeature("ip", "ip", tuple(range(3000))),),
                       TEMPLATED.numeric, None, None, 10.0, hour_of_day=False, day_of_week=False)
    built, _ = FamilyIndex.fit("f", frame, feature_vectors(frame, spec), spec, IndexOptions())
    levels = dict(zip(built.rarity.categorical, built.rarity.levels))
    assert levels["cat__message"] == pytest.approx(np.log(100)) and levels["cat__ip"] > np.log(100) + 2
    term = built.rarity.contributions(built.field_rarity(built.reference))[:, :2].sum(axis=1)  # the categoricals' part
    assert (term > 0).mean() <= 0.051
    new = built.reference.head(5).with_columns(pl.Series("metadata_uid", [f"n{i}" for i in range(5)]),
                                               pl.lit(21 + FIRST_CODE, pl.Int32).alias("cat__message"))
    assert (built.rarity.term(built.field_rarity(new)) > 5).all()


def test_a_numeric_is_judged_within_the_categorical_that_explains_it():
    """Slow endpoint: durations depend on the template (t0 fast, t1 slow). A t0 event as slow
    as a t1 event is unheard of for t0: the rarity term judges each duration among events of
    its template (the categorical explaining most of its variance), so it flags the slow t0
    events and not the t1 events with the same duration; a family-wide tail could not tell
    them apart. Its natural extremes add little: a normal event's numeric part stays
    below 3 nats in 99.5 % of rows."""
    rng = np.random.default_rng(12)
    n = 10_000
    message = rng.integers(0, 2, n)
    frame = templated_family(rng, n).with_columns(
        pl.Series("cat__message", message + FIRST_CODE, dtype=pl.Int32),
        pl.Series("num__duration", np.where(message == 1, 4.0, 0.0) + rng.normal(0, 0.3, n), dtype=pl.Float32))
    built, _ = FamilyIndex.fit("f", frame, feature_vectors(frame, TEMPLATED), TEMPLATED, IndexOptions())
    assert built.rarity.contexts == [0]
    numeric = built.rarity.contributions(built.field_rarity(built.reference))[:, 1]
    assert np.quantile(numeric, 0.995) < 3
    probes = built.reference.head(40).with_columns(
        pl.Series("metadata_uid", [f"n{i}" for i in range(40)]), pl.lit(4.0, pl.Float32).alias("num__duration"),
        pl.Series("cat__message", np.repeat([FIRST_CODE, 1 + FIRST_CODE], 20), dtype=pl.Int32))
    term = built.rarity.term(built.field_rarity(probes))
    assert term[:20].min() > 5 and term[20:].max() == 0


def test_a_template_new_for_one_service_but_common_for_another_is_flagged_for_it():
    """Template t3 is common for `db` and never seen for `auth`: 20 auth events with it are
    rarer than every db event with it, and rank in the family's top 1 % by the field
    rarity (the k-NN terms cannot tell: the service is not among these features)."""
    rng = np.random.default_rng(8)
    frame = templated_family(rng, 20_000)
    common = frame.get_column("cat__message") == 3 + FIRST_CODE
    frame = frame.with_columns(pl.when(common).then(pl.lit("db")).otherwise(
        pl.when(pl.col("service") == "db").then(pl.lit("web")).otherwise(pl.col("service"))).alias("service"))
    moved = frame.filter(~common & (pl.col("service") == "auth")).head(20).get_column("metadata_uid")
    frame = frame.with_columns(pl.when(pl.col("metadata_uid").is_in(moved.implode())).then(3 + FIRST_CODE)
                               .otherwise(pl.col("cat__message")).cast(pl.Int32).alias("cat__message"))
    result = scored(frame).join(frame.select("metadata_uid", "service", "cat__message"), on="metadata_uid")
    new_for_auth = result.filter(pl.col("metadata_uid").is_in(moved.implode()))
    common_for_db = result.filter(pl.col("service") == "db")
    assert new_for_auth.get_column("rarity").min() > common_for_db.get_column("rarity").max()
    assert new_for_auth.get_column("rarity").median() > result.get_column("rarity").quantile(0.99)
    assert new_for_auth.get_column("score").median() > common_for_db.get_column("score").quantile(0.9)
