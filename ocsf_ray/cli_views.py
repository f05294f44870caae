"""What the `ocsf-ray` command line draws: progress bars fed by the library's progress
callbacks, and one rich table per stage result (`ocsf_ray.pipeline`). Rendering only:
nothing here reads or writes data."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console(stderr=True)


class ProgressView:
    """A context manager whose instance is an `on_progress(step, done, total, detail)`
    callback (see `ocsf_ray.pipeline`): one bar per step, labelled with the detail."""

    def __init__(self) -> None:
        self.bars = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), console=console, transient=False)
        self.tasks: dict[str, int] = {}

    def __enter__(self) -> ProgressView:
        self.bars.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bars.__exit__(*exc)

    def __call__(self, step: str, done: int, total: int | None, detail: str = "") -> None:
        if step not in self.tasks:
            self.tasks[step] = self.bars.add_task(step, total=total)
        self.bars.update(self.tasks[step], completed=done, total=total, description=f"{step} {detail}".strip())


def _table(title: str, columns: tuple[str, ...], left: tuple[str, ...] = ("family",)) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="left" if column in left else "right")
    return table


def show_synth(summary, out) -> None:
    """The synth archive's events per source and where its ground truth is."""
    table = _table(f"synthetic archive in {out}", ("source", "events"), left=("source",))
    for source, count in summary.events_per_source.items():
        table.add_row(source, f"{count:,}")
    table.add_row("[bold]total", f"[bold]{summary.total_events:,}")
    console.print(table)
    console.print(f"{len(summary.incidents)} incident(s) in {out}/ground_truth/incidents.json; "
                  f"{summary.total_events / max(summary.elapsed_s, 1e-9):,.0f} events/s", highlight=False)


def show_ingestion(archive, out: str, elapsed: float) -> None:
    """Files, rows read, accepted, rejected (and where), duplicate uids and throughput."""
    summary = Table(title="ingestion", show_header=False)
    summary.add_row("files", f"{archive.files:,}")
    summary.add_row("rows read", f"{archive.rows_read:,}")
    summary.add_row("accepted", f"{archive.accepted:,}")
    summary.add_row("rejected", f"{archive.rejected:,}" + (f"  → {out}/rejects/" if archive.rejected else ""))
    if archive.duplicate_uids:
        summary.add_row("duplicate metadata_uid", f"{archive.duplicate_uids:,} (renamed <uid>#<n>)")
    summary.add_row("throughput", f"{archive.rows_read / elapsed:,.0f} events/s ({elapsed:.1f} s)")
    console.print(summary)


def show_featurized(featurized, out: str) -> None:
    """The ingestion table, then each family's rows and feature counts and its columns."""
    from ocsf_ray.features.transform import feature_columns

    archive, result = featurized.archive, featurized.features
    show_ingestion(archive, out, featurized.elapsed_s)
    table = _table("features per family", ("family", "rows", "services", "categorical", "numeric", "time+window", "dropped"))
    for family, spec in result.specs.items():
        codes, floats = feature_columns(spec)
        numeric = sum(1 for f in floats if f.startswith("num__"))
        table.add_row(family, f"{result.rows[family]:,}", str(archive.families[family].services),
                      str(len(codes)), str(numeric), str(len(floats) - numeric), str(len(spec.dropped)))
    console.print(table)
    for family, spec in result.specs.items():
        described = ", ".join(
            f"{f.column}{'~' + f.normaliser if f.normaliser and f.normaliser != 'integer' else ''}({len(f.vocabulary)})"
            for f in spec.categorical)
        console.print(f"[bold]{family}[/] categorical: {described}", highlight=False)
        console.print(f"[bold]{family}[/] numeric: {', '.join(f.column for f in spec.numeric) or '-'}", highlight=False)
    console.print(f"features: {out}/features/  spec: {out}/feature_spec.json", highlight=False)


def show_trained(trained) -> None:
    """Each family's training (epochs, validation top-1 against the untrained model) and index."""
    manifest = trained.manifest
    table = _table(f"model bundle {manifest.version}",
                   ("family", "rows", "epochs", "best epoch", "val top-1", "untrained top-1", "index", "ref. k-NN p99"))
    for name, info in manifest.families.items():
        index = trained.index[name]
        kind = index["kind"] + (f" recall@k {index['recall_at_k']:.3f}" if index["recall_at_k"] is not None else "")
        fitted = (str(info.epochs_run), str(info.best_epoch), f"{info.val_top1:.3f}",
                  f"{info.untrained_val_top1:.3f}") if info.encoder else ("no encoder", "-", "-", "-")
        table.add_row(name, f"{info.rows:,}", *fitted, f"{kind} ({index['reference_rows']:,})",
                      f"{index['distance_p99']:.3f}")
    console.print(table)
    for name, reason in manifest.skipped.items():
        console.print(f"skipped {name}: {reason}", highlight=False)
    console.print(f"bundle: {trained.bundle}", highlight=False)


def show_sweep(tuned, sweep, out: str) -> None:
    """The sweep's trials, best first, and where the best one was exported."""
    keys = sorted(sweep.search_space)
    table = _table(f"sweep over {tuned.family} ({tuned.rows:,} rows)", (*keys, "epochs", "best val top-1"), left=())
    for trial in sorted(tuned.trials, key=lambda t: -(t["best_val_top1"] or 0)):
        table.add_row(*(f"{trial[k]:.4g}" if isinstance(trial[k], float) else str(trial[k]) for k in keys),
                      str(trial["epochs"]), f"{trial['best_val_top1'] or 0:.3f}")
    console.print(table)
    console.print(f"best trial exported to {out} (version {tuned.manifest.version})", highlight=False)


def show_scores(out: str, explanations: list[dict], unscored: dict[str, int] | None = None, show: int = 10) -> None:
    """Events, scored and flagged per family, and the top anomalies with their first reason."""
    from ocsf_ray.index.triage import score_counts

    table = _table("scores per family", ("family", "events", "scored", "flagged", "flag rate"))
    for family, events, scored, flagged in score_counts(out).iter_rows():
        table.add_row(family, f"{events:,}", f"{scored:,}", f"{flagged:,}", f"{flagged / scored:.2%}" if scored else "no model")
    console.print(table)
    top = Table(title=f"top {min(show, len(explanations))} anomalies (all in {out}/explanations.json)")
    for column in ("score", "family", "service", "metadata_uid", "why (largest contribution)"):
        top.add_column(column, justify="right" if column == "score" else "left", overflow="fold")
    for item in explanations[:show]:
        why = item["features"][0]["text"] if item["features"] else ""
        top.add_row(f"{item['anomaly_score']:.2f}", item["family"], str(item["service"]), item["metadata_uid"], why)
    console.print(top)
    for family, rows in (unscored or {}).items():
        console.print(f"{family}: {rows:,} events with no model in the bundle, written with empty scores", highlight=False)
    console.print(f"scores: {out}/scores/", highlight=False)


def show_evaluation(result: dict, out: str) -> None:
    """AUROC, AUPRC, precision@k and recall of the method and each baseline, per incident type too."""
    ks = sorted(result["method"]["precision_at_k"], key=int)
    table = _table(f"evaluation: {result['events']:,} events, {result['positives']:,} labelled anomalous",
                   ("method", "AUROC", "AUPRC", *(f"P@{k}" for k in ks), "recall@threshold"), left=("method",))
    for name, found in {"ocsf-ray anomaly_score": result["method"], **result["baselines"]}.items():
        cells = [found.get("auroc"), found.get("auprc"), *(found["precision_at_k"].get(k) for k in ks),
                 found.get("recall_at_threshold")]
        table.add_row(name, *("-" if v is None else f"{v:.3f}" for v in cells))
    console.print(table)
    types = result["method"].get("per_incident_type", {})
    if types:
        per_type = _table("recall at threshold per incident type", ("incident type", "events", "recall", "AUROC"),
                          left=("incident type",))
        for name, found in sorted(types.items()):
            per_type.add_row(name, f"{found['events']:,}", f"{found['recall']:.3f}",
                             "-" if found.get("auroc") is None else f"{found['auroc']:.3f}")
        console.print(per_type)
    for note in result["notes"]:
        console.print(f"note: {note}", highlight=False)
    console.print(f"evaluation: {out}/evaluation.json", highlight=False)


def show_rca(result, out: str, show: int = 10) -> None:
    """The first incident windows with their top candidates, and AC@k against ground truth when known."""
    table = _table(f"root causes: {len(result.windows)} incident windows", ("window", "start (UTC)", "minutes", "top candidates"),
                   left=("window", "start (UTC)", "minutes", "top candidates"))
    for window in result.windows[:show]:
        top = result.results[window.id]["method"][:3]
        table.add_row(window.id, time.strftime("%Y-%m-%d %H:%M", time.gmtime(window.start / 1000)),
                      f"{(window.end - window.start) / 60000:.0f}", "; ".join(f"{c['service']} {c['signal']}" for c in top))
    console.print(table)
    if result.evaluation:
        found = result.evaluation
        scores = _table(f"RCA against ground truth: {found['method']['incidents']} incidents",
                        ("ranking", "incident type", "AC@1", "AC@3", "Avg@5"), left=("ranking", "incident type"))
        rows = [("causal graph (PageRank)", "all", found["method"])]
        rows += [(name, "all", s) for name, s in found["baselines"].items()]
        rows += [(name if name != "method" else "causal graph (PageRank)", kind, s)
                 for kind, by in found["by_type"].items() for name, s in by.items()]
        for name, kind, s in rows:
            scores.add_row(name, kind, f"{s['ac@1']:.2f}", f"{s['ac@3']:.2f}", f"{s['avg@5']:.2f}")
        console.print(scores)
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)
    console.print(f"rca: {out}/rca/windows/", highlight=False)


def show_monitor(report: dict, archive, path: str) -> None:
    """Drift per family (embedding, features, flag rate), its reasons and the verdict."""
    table = _table(f"drift of {archive.accepted:,} current events against bundle {report['bundle_version']}",
                   ("family", "rows", "emb. dims drifted", "max PSI", "new values", "numerics drifted", "flag rate", "drifted"))
    for family, found in report["families"].items():
        if not found["tested"]:
            table.add_row(family, f"{found['rows']:,}", *["-"] * 5, "not tested")
            continue
        emb, feat, sc = found["embedding"], found["features"], found["score"]
        table.add_row(family, f"{found['rows']:,}", f"{emb['drifted_dimensions']}/{emb['dimensions']}", f"{feat['max_psi']:.3f}",
                      f"{feat['max_new_category_rate']:.1%}", f"{feat['drifted_numerics']}/{feat['numerics']}",
                      f"{sc['flag_rate']:.2%} ({sc['ratio']:.1f}x)", "[bold red]yes" if found["drifted"] else "no")
    console.print(table)
    if report["unmodelled_families"]:
        console.print("not checked, no model in the bundle: " + ", ".join(
            f"{family} ({rows:,} events)" for family, rows in report["unmodelled_families"].items()), highlight=False)
    for reason in report["reasons"]:
        console.print(f"drift: {reason}", highlight=False, soft_wrap=True)
    if "challenger" in report:
        found = report["challenger"]
        console.print(f"[bold]{found['winner']} wins[/]: {found['reason']}"
                      + (f"; champion backed up to {found['backup']}" if found["backup"] else ""), highlight=False)
    verdict = "retraining recommended" if report["retrain_recommended"] else "no drift"
    console.print(f"[bold]{verdict}[/]; report: {path}", highlight=False)
