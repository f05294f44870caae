"""The HTML report `ocsf-ray run` writes: what a user looks at first after scoring.

One self-contained `report.html` with its PNGs beside it (referenced by relative name,
so the directory can be copied or served as is), rendered from the jinja2 template
`ocsf_ray/templates/report.html.j2` with autoescaping on: event fields come from
untrusted logs, and every value the template prints is escaped. The page has no
JavaScript and no external URLs. Figures are drawn on `matplotlib.figure.Figure`
objects, never through pyplot, so writing a report leaves no global plotting state behind.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache

import jinja2
import numpy as np
import polars as pl
from matplotlib.figure import Figure

from ocsf_ray.io.sources import join_uri, write_bytes
from ocsf_ray.io.storage import remove

DASH = "–"
MAX_FAMILIES = 8  # more stacked colours than this are unreadable; the rest become "other"
TSNE_MAX_POINTS = 3000  # t-SNE beyond this is too slow on a laptop; PCA alone then


@dataclass
class ReportInputs:
    """Everything `write_report` draws: summary rows, scores, the threshold, top explanations, an
    embedding sample and the evaluation."""

    title: str
    summary: list[tuple[str, str]]  # rows of the summary table, already formatted
    scores: pl.DataFrame  # metadata_uid, time (epoch ms), family, service, anomaly_score, percentile, is_anomaly
    threshold_score: float  # the lowest flagged anomaly_score (`lowest_flagged`)
    threshold_percentile: float  # the percentile of its family's reference each flagged event reaches
    top: list[dict]  # explanation dicts of the top anomalies, best first
    embedding_sample: np.ndarray | None  # [n, d] embeddings of a sample of events
    embedding_scores: np.ndarray | None  # [n] their anomaly_score
    embedding_flagged: np.ndarray | None  # [n] whether each is above the threshold
    evaluation: dict | None  # metrics against ground truth, None when there is none
    embedding_family: str | None = None  # each family has its own model: a map shows one


def lowest_flagged(scores: pl.DataFrame) -> float:
    """The lowest anomaly_score among flagged events (inf when none). Each family flags
    the events beyond a percentile of its own reference, so no one score is the threshold
    of every family; above this one, some family flags."""
    flagged = scores.filter(pl.col("is_anomaly")).get_column("anomaly_score")
    return float(flagged.min()) if flagged.len() else math.inf


def write_report(out_dir: str, inputs: ReportInputs) -> str:
    """Write report.html and its PNGs into out_dir (local or a URI); return report.html's location."""
    _distribution_png(out_dir, inputs)
    page = _template().render(
        title=inputs.title, summary=inputs.summary, top=inputs.top, DASH=DASH,
        embedding_map=_embedding_png(out_dir, inputs), evaluation=inputs.evaluation,
        **(_evaluation_view(inputs.evaluation) if inputs.evaluation else {}))
    path = join_uri(out_dir, "report.html")
    write_bytes(page.encode("utf-8"), path)
    return path


@cache
def _template() -> jinja2.Template:
    environment = jinja2.Environment(loader=jinja2.PackageLoader("ocsf_ray", "templates"), autoescape=True,
                                     undefined=jinja2.StrictUndefined)
    environment.filters.update(fmt=_fmt, utc=_utc, bars=_bars)
    return environment.get_template("report.html.j2")


def _save_png(fig: Figure, uri: str) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    write_bytes(buffer.getvalue(), uri)


def _fmt(value, digits: int = 3) -> str:
    """A cell's text: floats rounded to `digits`, missing or NaN values as a dash (the
    template escapes what this returns)."""
    if value is None or (isinstance(value, (float, np.floating)) and math.isnan(value)):
        return DASH
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}f}"
    return str(value)


def _utc(ms) -> str:
    """Epoch ms as UTC ISO; a time out of datetime's range (bad logs) is shown as given."""
    if ms is None:
        return DASH
    try:
        return datetime.fromtimestamp(int(ms) / 1000, tz=timezone.utc).isoformat(timespec="milliseconds")[:-6] + "Z"
    except (OverflowError, ValueError, OSError):
        return str(ms)


def _distribution_png(out_dir: str, inputs: ReportInputs) -> None:
    """Histogram of anomaly_score, stacked by family, log-scaled y: the score is a heavy-
    tailed surprise, so a linear axis would show only the bulk near zero. Counts come from
    numpy per family so a million rows never reach matplotlib as individual points."""
    frame = inputs.scores.select(pl.col("family").fill_null("unknown"), "anomaly_score")
    frame = frame.filter(pl.col("anomaly_score").is_finite())
    threshold = inputs.threshold_score
    top = frame.group_by("family").len().sort(["len", "family"], descending=[True, False])["family"].to_list()
    groups = {fam: frame.filter(pl.col("family") == fam) for fam in top[:MAX_FAMILIES]}
    if len(top) > MAX_FAMILIES:
        groups["other"] = frame.filter(~pl.col("family").is_in(top[:MAX_FAMILIES]))
    high = max(float(frame["anomaly_score"].max() or 0.0), threshold if math.isfinite(threshold) else 0.0)
    edges = np.linspace(0.0, max(high, 1e-9) * 1.02, 61)
    counts = [np.histogram(g["anomaly_score"].to_numpy(), bins=edges)[0] for g in groups.values()]
    fig = Figure(figsize=(9, 4.5))
    ax = fig.add_subplot()
    if counts:
        ax.hist([edges[:-1]] * len(counts), bins=edges, weights=counts, stacked=True, log=True,
                label=[str(fam).replace("$", r"\$") for fam in groups], histtype="stepfilled", alpha=0.8)
        ax.legend(fontsize=8, title="family")
    else:
        ax.text(0.5, 0.5, "no scored events", ha="center", transform=ax.transAxes)
    if math.isfinite(threshold):
        ax.axvline(threshold, color="red", linestyle="--")
        ax.text(threshold, 1.0, f" lowest flagged (p{inputs.threshold_percentile:g} of its family) = {threshold:.2f}",
                color="red", transform=ax.get_xaxis_transform(), va="top", fontsize=8)
    ax.set_xlabel("anomaly_score (-log10 of the terms' Fisher-combined p-value)")
    ax.set_ylabel("events (log scale)")
    ax.set_title(f"Score distribution of {frame.height:,} events")
    fig.tight_layout()
    _save_png(fig, join_uri(out_dir, "score_distribution.png"))


def _bars(item: dict) -> list[tuple[dict, int]]:
    """An explanation's differing features with the width of each one's bar (px), the
    largest contribution 60 px: the reader sees at a glance which feature decided."""
    features = item.get("features") or []
    scale = max((abs(f.get("contribution") or 0.0) for f in features), default=0.0) or 1.0
    return [(f, int(60 * abs(f.get("contribution") or 0.0) / scale)) for f in features]


def _projection(x: np.ndarray) -> tuple[np.ndarray, str]:
    """2-D coordinates and the method's name: t-SNE on a 50-d PCA (the usual denoising
    step) for small samples, PCA alone for large ones where t-SNE would take minutes.
    One thread: t-SNE's OpenMP loops spin-wait, and on a busy machine (measured on 2
    cores at load ~11) two threads took 25-33 s for 200 points where one took ~1 s."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    n, d = x.shape
    with threadpool_limits(1):
        if n > TSNE_MAX_POINTS:
            return PCA(n_components=2, random_state=0).fit_transform(x), "PCA"
        reduced = PCA(n_components=min(50, n, d), random_state=0).fit_transform(x)
        tsne = TSNE(n_components=2, perplexity=min(30.0, (n - 1) / 3), init="pca", random_state=0)
        return tsne.fit_transform(reduced), "t-SNE on PCA-50"


def _embedding_png(out_dir: str, inputs: ReportInputs) -> bool:
    """Where the flagged events sit among the others: isolated points are novel
    behaviour, a tight cluster of flags is one recurring incident. False (and no map)
    when there is no embedding sample."""
    path = join_uri(out_dir, "embedding_map.png")
    x = inputs.embedding_sample
    if x is None or x.ndim != 2 or x.shape[0] < 5 or x.shape[1] < 2:
        remove(path)  # a stale map from an earlier run would mislead
        return False
    x = np.asarray(x, dtype=np.float32)
    scores = np.zeros(len(x)) if inputs.embedding_scores is None else np.asarray(inputs.embedding_scores, float)
    flagged = (scores >= inputs.threshold_score if inputs.embedding_flagged is None
               else np.asarray(inputs.embedding_flagged, bool))
    xy, method = _projection(x)
    order = np.argsort(scores, kind="stable")  # highest scores drawn last, on top
    normal = order[~flagged[order]]
    fig = Figure(figsize=(8, 6.5))
    ax = fig.add_subplot()
    vmax = inputs.threshold_score if math.isfinite(inputs.threshold_score) and inputs.threshold_score > 0 else None
    points = ax.scatter(xy[normal, 0], xy[normal, 1], c=scores[normal], cmap="viridis", s=8, vmin=0, vmax=vmax)
    fig.colorbar(points, ax=ax, label="anomaly_score (colour saturates at the lowest flagged score)")
    ax.scatter(xy[flagged, 0], xy[flagged, 1], marker="X", s=40, c="red", edgecolors="black", linewidths=0.5,
               label=f"above threshold ({int(flagged.sum())})")
    ax.legend(loc="best", fontsize=8)
    family = f" of {inputs.embedding_family}" if inputs.embedding_family else ""
    ax.set_title(f"Embedding map of {len(x):,} sampled events{family} ({method})")
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    _save_png(fig, path)
    return True


def _evaluation_view(evaluation: dict) -> dict:
    """The evaluation's tables as the template reads them: method vs baselines on the
    same labelled events (a score means little without knowing what isolation forest or
    a random ranking would have reached), and recall per incident type."""
    methods = {"ocsf-ray": evaluation.get("method") or {}, **(evaluation.get("baselines") or {})}
    at_k = {name: {str(k): v for k, v in (m.get("precision_at_k") or {}).items()} for name, m in methods.items()}
    ks = sorted({k for p in at_k.values() for k in p},
                key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k))  # 100 before 1000
    per_type = {name: {str(t): v or {} for t, v in (m.get("per_incident_type") or {}).items()}
                for name, m in methods.items()}
    types = sorted({t for p in per_type.values() for t in p})
    type_events = {t: next((p[t]["events"] for p in per_type.values() if p.get(t, {}).get("events") is not None), None)
                   for t in types}  # every method scores the same events, so the first count found serves
    return {"methods": methods, "at_k": at_k, "ks": ks, "per_type": per_type, "types": types, "type_events": type_events}
