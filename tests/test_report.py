"""The HTML report: sections present, untrusted strings escaped, figures written."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from ocsf_ray.report import ReportInputs, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MALICIOUS = "<script>alert(1)</script>"


def _explanation(i: int, service: str) -> dict:
    return {
        "metadata_uid": f"anom-{i}", "family": "6003_log", "service": service, "time": 1_700_000_000_000 + i,
        "anomaly_score": 12.5 - i, "percentile": 99.99, "knn_distance": 3.2,
        "neighbours": [{"metadata_uid": f"near-{i}-{j}", "distance": 0.5 + j} for j in range(3)],
        "features": [
            {"feature": "api.operation", "kind": "categorical", "value": "DeleteBucket", "neighbours": "GetObject",
             "contribution": 0.7, "text": f"api.operation = DeleteBucket (neighbours: GetObject) #{i}"},
            {"feature": "duration", "kind": "numeric", "value": "9000", "neighbours": "12",
             "contribution": 0.2, "text": f"duration 9000 ms vs 12 ms #{i}"},
        ],
    }


def _evaluation() -> dict:
    metrics = {"auroc": 0.93, "auprc": 0.41, "precision_at_k": {"100": 0.8, 1000: None},
               "recall_at_threshold": 0.6, "flagged_rate": 0.01,
               "per_incident_type": {"credential_stuffing": {"recall": 0.75, "auroc": 0.9, "events": 40}}}
    return {"method": metrics,
            "baselines": {"isolation_forest": {"auroc": 0.71, "per_incident_type": {}}, "random": {"auroc": None}},
            "events": 300, "positives": 40, "notes": ["labels from the synthetic generator"]}


@pytest.fixture
def inputs() -> ReportInputs:
    rng = np.random.default_rng(0)
    n = 300
    score = rng.exponential(1.0, n)
    scores = pl.DataFrame({
        "metadata_uid": [f"uid-{i}" for i in range(n)],
        "time": np.arange(n, dtype=np.int64) * 1000 + 1_700_000_000_000,
        "family": rng.choice(["6003_log", "1007_process", "4001_network"], n).tolist(),
        "service": ["checkout"] * n,
        "anomaly_score": score,
        "percentile": 100 * (1 - np.exp(-score)),
        "is_anomaly": score > 4.6,
    })
    emb_scores = rng.exponential(1.0, 200)
    return ReportInputs(
        title="ocsf-ray run: test",
        summary=[("events read", "1,234"), ("flagged", "12"), ("model version", "v7")],
        scores=scores, threshold_score=4.6, threshold_percentile=99.0,
        top=[_explanation(0, "checkout"), _explanation(1, MALICIOUS), _explanation(2, None)],
        embedding_sample=rng.normal(size=(200, 64)).astype(np.float32),
        embedding_scores=emb_scores, embedding_flagged=emb_scores > 4.6,
        evaluation=_evaluation(),
    )


def _assert_png(path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5_000


def test_report_sections_and_figures(tmp_path, inputs):
    path = write_report(str(tmp_path / "out"), inputs)
    assert path == str(tmp_path / "out" / "report.html")
    page = (tmp_path / "out" / "report.html").read_text()
    for label, value in inputs.summary:
        assert f"<th>{label}</th>" in page and f"<td>{value}</td>" in page
    for item in inputs.top:
        assert item["metadata_uid"] in page
        for n in item["neighbours"]:
            assert n["metadata_uid"] in page
        for f in item["features"]:
            assert f["text"] in page
    assert "2023-11-14T22:13:20.000Z" in page  # the first anomaly's time as UTC ISO
    _assert_png(tmp_path / "out" / "score_distribution.png")
    _assert_png(tmp_path / "out" / "embedding_map.png")
    assert 'src="score_distribution.png"' in page and 'src="embedding_map.png"' in page
    assert "<script" not in page.lower() and "http" not in page


def _without_map(inputs: ReportInputs) -> ReportInputs:
    """Tests about the tables skip the t-SNE map, the slow part of a report."""
    inputs.embedding_sample = inputs.embedding_scores = inputs.embedding_flagged = None
    return inputs


def test_untrusted_strings_are_escaped(tmp_path, inputs):
    _without_map(inputs)
    inputs.title = "run <b>x</b>"
    inputs.summary.append(("<i>label</i>", "a & b"))
    page = open(write_report(str(tmp_path), inputs)).read()
    assert MALICIOUS not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>x</b>" not in page and "run &lt;b&gt;x&lt;/b&gt;" in page
    assert "&lt;i&gt;label&lt;/i&gt;" in page and "a &amp; b" in page


def test_evaluation_tables(tmp_path, inputs):
    _without_map(inputs)
    page = open(write_report(str(tmp_path), inputs)).read()
    assert "<h2>Evaluation</h2>" in page
    for text in ("ocsf-ray", "isolation_forest", "precision@100", "precision@1000", "credential_stuffing",
                 "0.930", "0.750", "labels from the synthetic generator"):
        assert text in page
    assert "–" in page  # missing values (precision@1000, random's auroc) render as a dash

    inputs.evaluation = None
    page = open(write_report(str(tmp_path), inputs)).read()
    assert "Evaluation" not in page and "isolation_forest" not in page


def test_missing_embeddings_skip_the_map(tmp_path, inputs):
    write_report(str(tmp_path), inputs)  # an earlier run's map must not survive
    _without_map(inputs)
    page = open(write_report(str(tmp_path), inputs)).read()
    assert "map skipped" in page and "embedding_map.png" not in page
    assert not (tmp_path / "embedding_map.png").exists()
    _assert_png(tmp_path / "score_distribution.png")


def test_empty_scores_and_no_anomalies(tmp_path, inputs):
    _without_map(inputs)
    inputs.scores = inputs.scores.clear()
    inputs.top = []
    page = open(write_report(str(tmp_path), inputs)).read()
    assert "No anomalies above the threshold" in page
    _assert_png(tmp_path / "score_distribution.png")
