"""The `ocsf-ray` command line: one verb per pipeline stage (see DESIGN.md).

The CLI owns the console: rich progress while work runs, a summary table at the end,
and a one-line reason with a non-zero exit when an argument or input is bad.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(
    name="ocsf-ray",
    help="Distributed batch analytics of OCSF observability and security archives on Ray.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)


@app.callback()
def _group() -> None:
    """Distributed batch analytics of OCSF observability and security archives on Ray."""


def fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=False,
    )


def _clear_outputs(out: str, names: list[str]) -> None:
    """Remove what an earlier run of the same verb left, so counts never mix two runs."""
    from ocsf_ray.io.sources import join_uri
    from ocsf_ray.io.storage import remove

    for name in names:
        remove(join_uri(out, name))


@app.command()
def synth(
    out: Path = typer.Option(..., "--out", "-o", help="Directory for events/ and ground_truth/"),
    events: int = typer.Option(200_000, help="Approximate number of events"),
    services: int = typer.Option(8, help="Services in the simulated topology"),
    incidents: int = typer.Option(6, help="Incidents to inject (types cycle through the catalogue)"),
    days: float = typer.Option(1.0, help="Days of simulated time (fractions allowed)"),
    seed: int = typer.Option(0, help="Random seed; the same seed gives the same bytes"),
    format: str = typer.Option("parquet", "--format", help="parquet or ndjson"),
    overwrite: bool = typer.Option(False, help="Replace an existing archive in --out"),
    num_cpus: int | None = typer.Option(None, help="Logical CPUs for a local Ray (default: all cores)"),
) -> None:
    """Generate a multi-source OCSF archive with injected incidents and ground truth."""
    from ocsf_ray.runtime import start_ray
    from ocsf_ray.synth import SynthConfig, generate_archive

    try:
        config = SynthConfig(
            out=out, events=events, services=services, incidents=incidents, days=days, seed=seed,
            format=format, overwrite=overwrite,
        )
    except ValueError as err:
        fail(str(err))
    start_ray(num_cpus)
    with progress_bar() as progress:
        task = progress.add_task("synth shards", total=None)
        try:
            summary = generate_archive(config, on_progress=lambda done, total: progress.update(task, completed=done, total=total))
        except (FileExistsError, ValueError) as err:
            fail(str(err))
    table = Table(title=f"synthetic archive in {out}")
    table.add_column("source")
    table.add_column("events", justify="right")
    for source, count in summary.events_per_source.items():
        table.add_row(source, f"{count:,}")
    table.add_row("[bold]total", f"[bold]{summary.total_events:,}")
    console.print(table)
    console.print(
        f"{len(summary.incidents)} incident(s) in {out}/ground_truth/incidents.json; "
        f"{summary.total_events / max(summary.elapsed_s, 1e-9):,.0f} events/s",
        highlight=False,
    )


@app.command()
def featurize(
    inputs: list[str] = typer.Argument(..., help="OCSF files, directories or globs (.parquet, .json, .jsonl, .ndjson, optionally .gz; local or s3://...)"),
    out: str = typer.Option(..., "--out", "-o", help="Output directory (local or URI)"),
    max_vocab: int = typer.Option(1000, help="Most frequent values kept per categorical column"),
    min_count: int = typer.Option(2, help="Minimum count for a value to enter a vocabulary"),
    include: list[str] = typer.Option([], help="Column to keep as a feature whatever the data says (repeatable)"),
    exclude: list[str] = typer.Option([], help="Column never to use as a feature (repeatable)"),
    num_cpus: int | None = typer.Option(None, help="Logical CPUs for a local Ray (default: all cores)"),
) -> None:
    """Ingest OCSF events, fit a FeatureSpec per event family and write feature shards."""
    from ocsf_ray.features import FeatureOptions
    from ocsf_ray.runtime import start_ray

    _resolved(inputs)
    if max_vocab < 1 or min_count < 1:
        fail("--max-vocab and --min-count must be at least 1")
    options = FeatureOptions(max_vocab=max_vocab, min_count=min_count, include=tuple(include), exclude=tuple(exclude))
    start_ray(num_cpus)
    _featurize_step(inputs, out, options)


def _resolved(inputs: list[str]) -> list:
    """The input files, or a one-line error before any Ray work."""
    from ocsf_ray.io import InputError, resolve_inputs

    try:
        return resolve_inputs(inputs)
    except InputError as err:
        fail(str(err))


def _ingest(inputs: list[str], out: str, progress: Progress):
    from ocsf_ray.io import read_events

    task = progress.add_task("ingest", total=None)
    return read_events(inputs, out, on_progress=lambda done, total: progress.update(task, completed=done, total=total))


def _ingestion_table(archive, out: str, elapsed: float) -> Table:
    summary = Table(title="ingestion", show_header=False)
    summary.add_row("files", f"{archive.files:,}")
    summary.add_row("rows read", f"{archive.rows_read:,}")
    summary.add_row("accepted", f"{archive.accepted:,}")
    summary.add_row("rejected", f"{archive.rejected:,}" + (f"  → {out}/rejects/" if archive.rejected else ""))
    if archive.duplicate_uids:
        summary.add_row("duplicate metadata_uid", f"{archive.duplicate_uids:,} (renamed <uid>#<n>)")
    summary.add_row("throughput", f"{archive.rows_read / elapsed:,.0f} events/s ({elapsed:.1f} s)")
    return summary


def _featurize_step(inputs: list[str], out: str, options):
    """Ingest + fit + write features, with progress and the summary tables; the archive."""
    from ocsf_ray.features import featurize_archive
    from ocsf_ray.features.transform import feature_columns

    _clear_outputs(out, ["canonical", "features", "rejects", "feature_spec.json"])
    started = time.perf_counter()
    with progress_bar() as progress:
        archive = _ingest(inputs, out, progress)
        fit = progress.add_task("features", total=len(archive.families))
        result = featurize_archive(
            archive, out, options,
            on_progress=lambda family, done, total: progress.update(
                fit, completed=done, total=total, description=f"features {family}".strip()
            ),
        )
    console.print(_ingestion_table(archive, out, time.perf_counter() - started))
    table = Table(title="features per family")
    for column in ("family", "rows", "services", "categorical", "numeric", "time+window", "dropped"):
        table.add_column(column, justify="left" if column == "family" else "right")
    for family, spec in result.specs.items():
        codes, floats = feature_columns(spec)
        numeric = sum(1 for f in floats if f.startswith("num__"))
        table.add_row(
            family, f"{result.rows[family]:,}", str(archive.families[family].services),
            str(len(codes)), str(numeric), str(len(floats) - numeric), str(len(spec.dropped)),
        )
    console.print(table)
    for family, spec in result.specs.items():
        described = ", ".join(
            f"{f.column}{'~' + f.normaliser if f.normaliser and f.normaliser != 'integer' else ''}({len(f.vocabulary)})"
            for f in spec.categorical
        )
        console.print(f"[bold]{family}[/] categorical: {described}", highlight=False)
        console.print(f"[bold]{family}[/] numeric: {', '.join(f.column for f in spec.numeric) or '-'}", highlight=False)
    console.print(f"features: {out}/features/  spec: {out}/feature_spec.json", highlight=False)
    return archive


def _featurized(features: str) -> dict:
    """The families of a `featurize` output, or a one-line error."""
    from ocsf_ray.train import discover_features

    try:
        return discover_features(features)
    except (OSError, KeyError, ValueError) as err:
        fail(f"not a featurize output: {features} ({err.__class__.__name__}: {err})")


@app.command()
def train(
    features: str = typer.Option(..., "--features", "-f", help="A `featurize` output directory"),
    out: str = typer.Option(..., "--out", "-o", help="Model bundle directory to write"),
    workers: int = typer.Option(2, help="Ray Train workers (DDP)"),
    epochs: int = typer.Option(10, help="Maximum epochs (early stopping may end sooner)"),
    batch_size: int = typer.Option(256, help="Rows per worker batch"),
    learning_rate: float = typer.Option(1e-3, help="AdamW learning rate"),
    temperature: float = typer.Option(0.1, help="NT-Xent temperature"),
    corruption_rate: float = typer.Option(0.4, help="Share of columns replaced in each SCARF view"),
    d_model: int = typer.Option(128, help="TabularResNet width"),
    n_blocks: int = typer.Option(4, help="Residual blocks"),
    embedding_dim: int = typer.Option(64, help="Embedding size used for search"),
    masked_feature_weight: float = typer.Option(0.0, help="Weight of the masked-feature auxiliary loss (0 = off)"),
    max_batches_per_epoch: int = typer.Option(0, help="Cap batches per epoch (0 = whole shard)"),
    family: list[str] = typer.Option([], help="Train only this family (repeatable)"),
    gpu: bool | None = typer.Option(None, "--gpu/--no-gpu", help="Default: use GPUs when the cluster has them"),
    resume: bool = typer.Option(False, help="Continue the runs in OUT/_runs from their latest checkpoints"),
    k: int = typer.Option(20, help="Neighbours whose mean distance is the anomaly score"),
    reference_max: int = typer.Option(200_000, help="Reference events indexed per family (a uniform sample)"),
    exact_max: int = typer.Option(100_000, help="Exact FAISS search up to this many reference events per time shard, IVF beyond"),
    nprobe: int = typer.Option(16, help="IVF cells visited per query"),
    exclusion_minutes: float = typer.Option(60.0, help="Neighbours must lie this far in time from an event of the reference period (0 = off)"),
    num_cpus: int | None = typer.Option(None, help="Logical CPUs for a local Ray (default: all cores)"),
) -> None:
    """Pretrain one TabularResNet per event family (SCARF + NT-Xent on Ray Train), index
    each family's reference embeddings with FAISS and write the bundle."""
    from ocsf_ray.index import IndexOptions
    from ocsf_ray.runtime import start_ray
    from ocsf_ray.train import TrainOptions

    found = _featurized(features)
    unknown = [f for f in family if f not in found]
    if unknown:
        fail(f"unknown family {', '.join(unknown)}; found {', '.join(found)}")
    if workers < 1 or epochs < 1 or batch_size < 2 or not 0 < corruption_rate < 1 or temperature <= 0:
        fail("need --workers >= 1, --epochs >= 1, --batch-size >= 2, 0 < --corruption-rate < 1, --temperature > 0")
    if k < 1 or reference_max <= k or exact_max < 1 or nprobe < 1 or exclusion_minutes < 0:
        fail("need --k >= 1, --reference-max > --k, --exact-max >= 1, --nprobe >= 1, --exclusion-minutes >= 0")
    options = TrainOptions(
        epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, temperature=temperature,
        corruption_rate=corruption_rate, d_model=d_model, n_blocks=n_blocks, embedding_dim=embedding_dim,
        masked_feature_weight=masked_feature_weight, max_batches_per_epoch=max_batches_per_epoch,
    )
    start_ray(num_cpus or max(4, workers + 2))
    index_options = IndexOptions(k=k, reference_max=reference_max, exact_max=exact_max, nprobe=nprobe,
                                 exclusion_minutes=exclusion_minutes)
    _train_step(features, out, options, workers, gpu, resume, family, index_options)


def _train_step(features: str, out: str, options, workers: int, gpu: bool | None, resume: bool,
                families: list[str], index_options) -> dict:
    """Train a bundle, index it, print its summary; the manifest."""
    from ocsf_ray.index import index_bundle
    from ocsf_ray.train import train_bundle

    with progress_bar() as progress:
        task = progress.add_task("train", total=len(families) or None)
        result = train_bundle(
            features, out, options, workers=workers, use_gpu=gpu, resume=resume, families=families or None,
            on_family=lambda name, done, total: progress.update(task, completed=done, total=total, description=f"train {name}".strip()),
        )
        if not result.manifest["families"]:
            fail(f"no family had enough rows to train on: {result.manifest['skipped']}")
        indexed = progress.add_task("index", total=len(result.manifest["families"]))
        built = index_bundle(
            out, features, index_options,
            on_family=lambda name, done, total: progress.update(indexed, completed=done, description=f"index {name}".strip()),
        )
    table = Table(title=f"model bundle {result.manifest['version']}")
    for column in ("family", "rows", "epochs", "best epoch", "val top-1", "untrained top-1", "index", "ref. k-NN p99"):
        table.add_column(column, justify="left" if column == "family" else "right")
    for name, info in result.manifest["families"].items():
        index = built[name]
        kind = index["kind"] + (f" recall@k {index['recall_at_k']:.3f}" if index["recall_at_k"] is not None else "")
        trained = (str(info["epochs_run"]), str(info["best_epoch"]), f"{info['val_top1']:.3f}",
                   f"{info['untrained_val_top1']:.3f}") if info.get("encoder", True) else ("no encoder", "-", "-", "-")
        table.add_row(name, f"{info['rows']:,}", *trained, f"{kind} ({index['reference_rows']:,})",
                      f"{index['distance_p99']:.3f}")
    console.print(table)
    for name, reason in result.manifest["skipped"].items():
        console.print(f"skipped {name}: {reason}", highlight=False)
    console.print(f"bundle: {out}", highlight=False)
    return result.manifest


@app.command()
def tune(
    config: str = typer.Option(..., "--config", "-c", help="A sweep definition, e.g. tune_configs/smoke.yaml"),
    features: str = typer.Option(..., "--features", "-f", help="A `featurize` output directory"),
    out: str = typer.Option(..., "--out", "-o", help="Bundle directory for the best trial"),
    family: str | None = typer.Option(None, help="Family to tune (default: the largest)"),
    num_cpus: int | None = typer.Option(None, help="Logical CPUs for a local Ray (default: all cores)"),
) -> None:
    """Sweep hyperparameters with Ray Tune (ASHA) and export the best trial as a bundle."""
    from pydantic import ValidationError

    from ocsf_ray.index import IndexOptions, index_bundle
    from ocsf_ray.runtime import start_ray
    from ocsf_ray.tune import SweepConfig, run_sweep

    try:
        sweep = SweepConfig.from_yaml(config)
    except (OSError, ValidationError, ValueError) as err:
        fail(f"bad sweep config {config}: {' '.join(str(err).split())}")
    found = _featurized(features)
    if family and family not in found:
        fail(f"unknown family {family}; found {', '.join(found)}")
    chosen = found[family] if family else max(found.values(), key=lambda f: f.rows)
    start_ray(num_cpus or max(4, sweep.workers_per_trial + 2))
    console.print(f"tuning {chosen.family} ({chosen.rows:,} rows): {sweep.trials} trial(s)", highlight=False)
    manifest, trials = run_sweep(sweep, chosen, out)
    with console.status("indexing the best trial's reference embeddings"):
        index_bundle(out, features, IndexOptions())
    table = Table(title=f"sweep over {chosen.family}")
    keys = sorted(sweep.search_space)
    for column in (*keys, "epochs", "best val top-1"):
        table.add_column(column, justify="right")
    for trial in sorted(trials, key=lambda t: -(t["best_val_top1"] or 0)):
        table.add_row(*(f"{trial[k]:.4g}" if isinstance(trial[k], float) else str(trial[k]) for k in keys),
                      str(trial["epochs"]), f"{trial['best_val_top1'] or 0:.3f}")
    console.print(table)
    console.print(f"best trial exported to {out} (version {manifest['version']})", highlight=False)


def _threshold(percentile: float | None, contamination: float | None) -> float:
    """The flagging threshold as a percentile of the family's reference scores.

    --contamination c (the expected share of anomalies, as in scikit-learn) and
    --percentile 100 (1 - c) are the same threshold; default 99, i.e. 1 % of events like
    the reference are flagged: a daily triage budget of about one event in a hundred.
    """
    if percentile is not None and contamination is not None:
        fail("give --percentile or --contamination, not both")
    if contamination is not None:
        if not 0 < contamination < 1:
            fail("--contamination must be between 0 and 1")
        return 100.0 * (1.0 - contamination)
    if percentile is not None and not 0 < percentile < 100:
        fail("--percentile must be between 0 and 100")
    return 99.0 if percentile is None else percentile


def _bundle(model: str) -> dict:
    """A bundle's manifest, or a one-line error when it is not an indexed bundle."""
    from ocsf_ray.train.bundle import read_manifest

    try:
        manifest = read_manifest(model)
    except (OSError, ValueError) as err:
        fail(f"not a model bundle: {model} ({err.__class__.__name__}: {err})")
    if "index" not in manifest:
        fail(f"bundle {model} has no index: it was written before indexing; train it again")
    return manifest


def _score_tables(out: str, explanations: list[dict], show: int = 10) -> None:
    from ocsf_ray.index.triage import score_counts

    counts = score_counts(out)
    table = Table(title="scores per family")
    for column in ("family", "events", "scored", "flagged", "flag rate"):
        table.add_column(column, justify="left" if column == "family" else "right")
    for family, events, scored, flagged in counts.iter_rows():
        rate = f"{flagged / scored:.2%}" if scored else "no model"
        table.add_row(family, f"{events:,}", f"{scored:,}", f"{flagged:,}", rate)
    console.print(table)
    top = Table(title=f"top {min(show, len(explanations))} anomalies (all in {out}/explanations.json)")
    for column in ("score", "family", "service", "metadata_uid", "why (largest contribution)"):
        top.add_column(column, justify="right" if column == "score" else "left", overflow="fold")
    for item in explanations[:show]:
        why = item["features"][0]["text"] if item["features"] else ""
        top.add_row(f"{item['anomaly_score']:.2f}", item["family"], str(item["service"]), item["metadata_uid"], why)
    console.print(top)
    console.print(f"scores: {out}/scores/", highlight=False)


def _explain_step(model: str, out: str, explain_top: int) -> list[dict]:
    from ocsf_ray.index.triage import explain_top as top_explanations
    from ocsf_ray.index.triage import write_explanations

    explanations = top_explanations(model, out, explain_top)
    write_explanations(explanations, out)
    return explanations


@app.command()
def score(
    inputs: list[str] = typer.Argument(..., help="OCSF files, directories or globs to score"),
    model: str = typer.Option(..., "--model", "-m", help="A model bundle (from `train`, `tune` or `run`)"),
    out: str = typer.Option(..., "--out", "-o", help="Output directory: scores/, rejects/, explanations.json"),
    percentile: float | None = typer.Option(None, help="Flag events above this percentile of their family's reference scores [default: 99]"),
    contamination: float | None = typer.Option(None, help="Or: the expected share of anomalies (0.01 = --percentile 99)"),
    explain_top: int = typer.Option(20, help="Explain this many top-scored events"),
    num_cpus: int | None = typer.Option(None, help="Logical CPUs for a local Ray (default: all cores)"),
) -> None:
    """Score every event with a bundle (its FeatureSpecs, models, FAISS indexes and
    calibration) and explain the top anomalies."""
    from ocsf_ray.index import score_archive
    from ocsf_ray.runtime import start_ray

    threshold = _threshold(percentile, contamination)
    _bundle(model)
    _resolved(inputs)
    start_ray(num_cpus)
    _clear_outputs(out, ["canonical", "features", "rejects", "scores", "feature_spec.json", "explanations.json"])
    started = time.perf_counter()
    with progress_bar() as progress:
        archive = _ingest(inputs, out, progress)
        task = progress.add_task("score", total=None)
        run = score_archive(model, archive, out, threshold, on_progress=lambda family, done, total: progress.update(
            task, completed=done, total=total, description=f"score {family}".strip()))
    explanations = _explain_step(model, out, explain_top)
    console.print(_ingestion_table(archive, out, time.perf_counter() - started))
    _score_tables(out, explanations)
    for family, rows in run.unscored.items():
        console.print(f"{family}: {rows:,} events with no model in the bundle, written with empty scores", highlight=False)


def _evaluation_table(result: dict) -> Table:
    ks = sorted(result["method"]["precision_at_k"], key=int)
    table = Table(title=f"evaluation: {result['events']:,} events, {result['positives']:,} labelled anomalous")
    for column in ("method", "AUROC", "AUPRC", *(f"P@{k}" for k in ks), "recall@threshold"):
        table.add_column(column, justify="left" if column == "method" else "right")
    rows = {"ocsf-ray anomaly_score": result["method"], **result["baselines"]}
    for name, found in rows.items():
        cells = [found.get("auroc"), found.get("auprc"), *(found["precision_at_k"].get(k) for k in ks), found.get("recall_at_threshold")]
        table.add_row(name, *("-" if v is None else f"{v:.3f}" for v in cells))
    return table


def _evaluate_step(out: str, labels: str) -> dict:
    from ocsf_ray.evaluate import evaluate_run, write_evaluation
    from ocsf_ray.io.sources import join_uri

    with console.status("evaluating against ground truth and baselines"):
        result = evaluate_run(join_uri(out, "scores"), labels, features_root=out)
    write_evaluation(result, join_uri(out, "evaluation.json"))
    console.print(_evaluation_table(result))
    types = result["method"].get("per_incident_type", {})
    if types:
        per_type = Table(title="recall at threshold per incident type")
        for column in ("incident type", "events", "recall", "AUROC"):
            per_type.add_column(column, justify="left" if column == "incident type" else "right")
        for name, found in sorted(types.items()):
            per_type.add_row(name, f"{found['events']:,}", f"{found['recall']:.3f}",
                             "-" if found.get("auroc") is None else f"{found['auroc']:.3f}")
        console.print(per_type)
    for note in result["notes"]:
        console.print(f"note: {note}", highlight=False)
    console.print(f"evaluation: {out}/evaluation.json", highlight=False)
    return result


@app.command()
def evaluate(
    scores: str = typer.Option(..., "--scores", "-s", help="The output directory of `score` or `run` (holding scores/ and features/)"),
    labels: str = typer.Option(..., "--labels", "-l", help="Ground truth labels.parquet (metadata_uid, is_anomaly, incident_id)"),
) -> None:
    """AUROC, AUPRC, precision@k and recall of the scores against labels, beside HBOS,
    ECOD, IsolationForest, raw-feature k-NN (same time exclusion), template rarity,
    severity and random rankings of the same events."""
    from ocsf_ray.index.triage import parquet_files
    from ocsf_ray.io.sources import join_uri
    from ocsf_ray.io.storage import exists

    out = scores.rstrip("/").removesuffix("/scores") if scores.rstrip("/").endswith("/scores") else scores
    if not parquet_files(join_uri(out, "scores"))[0]:
        fail(f"no scores under {out}/scores/: run `ocsf-ray score` or `ocsf-ray run` first")
    if not exists(labels):
        fail(f"labels not found: {labels}")
    _evaluate_step(out, labels)


def _found_labels(inputs: list[str], name: str = "labels.parquet") -> str | None:
    """Ground truth a synth archive carries beside its events (`<archive>/ground_truth/`)."""
    import posixpath

    from ocsf_ray.io.sources import join_uri
    from ocsf_ray.io.storage import exists

    for path in inputs:
        for root in (path, posixpath.dirname(path.rstrip("/"))):
            candidate = join_uri(root, "ground_truth", name)
            if exists(candidate):
                return candidate
    return None


def _rca_tables(result, show: int = 10) -> None:
    table = Table(title=f"root causes: {len(result.windows)} incident windows")
    for column in ("window", "start (UTC)", "minutes", "top candidates"):
        table.add_column(column)
    for window in result.windows[:show]:
        top = result.results[window.id]["method"][:3]
        table.add_row(window.id, time.strftime("%Y-%m-%d %H:%M", time.gmtime(window.start / 1000)),
                      f"{(window.end - window.start) / 60000:.0f}",
                      "; ".join(f"{c['service']} {c['signal']}" for c in top))
    console.print(table)
    if result.evaluation:
        found = result.evaluation
        scores = Table(title=f"RCA against ground truth: {found['method']['incidents']} incidents")
        for column in ("ranking", "incident type", "AC@1", "AC@3", "Avg@5"):
            scores.add_column(column, justify="left" if column in ("ranking", "incident type") else "right")
        rows = [("causal graph (PageRank)", "all", found["method"])]
        rows += [(name, "all", s) for name, s in found["baselines"].items()]
        rows += [(name if name != "method" else "causal graph (PageRank)", kind, s)
                 for kind, by in found["by_type"].items() for name, s in by.items()]
        for name, kind, s in rows:
            scores.add_row(name, kind, f"{s['ac@1']:.2f}", f"{s['ac@3']:.2f}", f"{s['avg@5']:.2f}")
        console.print(scores)
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)


def _rca_step(archive, out: str, scores: str | None, dependencies: str | None, incidents: str | None, options):
    from ocsf_ray.index.triage import parquet_files
    from ocsf_ray.io.sources import filesystem_for
    from ocsf_ray.io.storage import read_json
    from ocsf_ray.rca import run_rca

    # Ray Data reads them on any node: whole URIs, not paths inside the filesystem
    score_files = [filesystem_for(scores)[2] + path for path in parquet_files(scores)[0]] if scores else []
    truth = read_json(incidents) if incidents else None
    with progress_bar() as progress:
        task = progress.add_task("rca: signals", total=None)
        result = run_rca(archive, out, score_files, dependencies, truth, options,
                         on_progress=lambda done, total: progress.update(task, completed=done, total=total,
                                                                         description="rca: windows"))
    _rca_tables(result)
    console.print(f"rca: {out}/rca/windows/", highlight=False)
    return result


@app.command()
def rca(
    inputs: list[str] = typer.Argument(..., help="OCSF files, directories or globs (logs, traces, metrics, config changes)"),
    out: str = typer.Option(..., "--out", "-o", help="Output directory (writes <out>/rca/)"),
    scores: str | None = typer.Option(None, help="Scores directory of `ocsf-ray score` or `run` (<out>/scores): adds anomaly-share signals"),
    dependencies: str | None = typer.Option(None, help="YAML mapping caller: \\[callee, ...], when the archive has no spans"),
    incidents: str | None = typer.Option(None, help="Ground truth incidents.json to evaluate against (found beside a synth archive)"),
    bucket_seconds: int = typer.Option(60, min=1, help="Width of a signal's time bucket"),
    threshold: float = typer.Option(4.0, min=0.0, help="Deviation (standard-normal units) from which a signal is anomalous"),
    max_lag_minutes: int = typer.Option(15, min=1, help="Longest delay from a cause's onset to its effect's"),
    num_cpus: int | None = typer.Option(None, help="Logical CPUs for a local Ray (default 4)"),
) -> None:
    """Rank root causes of incident windows: per-source signals → causal graph → PageRank."""
    from ocsf_ray.io.storage import exists
    from ocsf_ray.rca import RcaOptions
    from ocsf_ray.runtime import start_ray

    _resolved(inputs)
    for path, what in ((scores, "scores directory"), (dependencies, "dependencies file"), (incidents, "incidents file")):
        if path and not exists(path):
            fail(f"{what} not found: {path}")
    if dependencies:
        import yaml

        from ocsf_ray.rca.dependencies import declared_dependencies

        try:
            declared_dependencies(dependencies)
        except (ValueError, yaml.YAMLError) as err:
            fail(" ".join(str(err).split()))
    start_ray(num_cpus or 4)
    with progress_bar() as progress:
        archive = _ingest(inputs, out, progress)
    options = RcaOptions(bucket_s=bucket_seconds, threshold=threshold, max_lag_minutes=max_lag_minutes)
    _rca_step(archive, out, scores, dependencies, incidents or _found_labels(inputs, "incidents.json"), options)


@app.command()
def monitor(
    model: str = typer.Option(..., "--model", "-m", help="The bundle in use (the champion), from `train`, `tune` or `run`"),
    current: list[str] = typer.Option(..., "--current", "-c", help="Current OCSF files, directories or globs (repeatable)"),
    out: str = typer.Option(".", "--out", "-o", help="Directory or URI for monitor/: report.json, current/, challenger/, backup/"),
    retrain: bool = typer.Option(False, "--retrain", help="Train a challenger on the current data; replace the champion (after a backup) only if it is not worse on held-out data"),
    percentile: float | None = typer.Option(None, help="Flagging threshold whose flag rate is checked [default: 99]"),
    max_rows: int = typer.Option(20_000, help="Current rows sampled per family"),
    epochs: int | None = typer.Option(None, help="Challenger epochs [default: the champion's]"),
    max_batches_per_epoch: int | None = typer.Option(None, help="Challenger batches per epoch, 0 = all [default: the champion's]"),
    num_cpus: int | None = typer.Option(None, help="Logical CPUs for a local Ray (default: 4 or workers + 2)"),
) -> None:
    """Check a bundle against current data for drift (embeddings, features, scores) and
    say whether to retrain; --retrain trains a challenger and keeps the better bundle.
    Exit code: 0 no drift, 3 retraining recommended, 2 bad arguments, 1 error (docs/MONITORING.md)."""
    import dataclasses

    from ocsf_ray.io.sources import join_uri
    from ocsf_ray.monitor import EXIT_NO_DRIFT, EXIT_RETRAIN, MonitorOptions, monitor_archive, retrain_challenger, write_report
    from ocsf_ray.monitor.champion import champion_train_options
    from ocsf_ray.runtime import start_ray

    manifest = _bundle(model)
    _resolved(current)
    if (epochs is not None and epochs < 1) or (max_batches_per_epoch is not None and max_batches_per_epoch < 0):
        fail("need --epochs >= 1 and --max-batches-per-epoch >= 0")
    try:
        options = MonitorOptions(percentile=_threshold(percentile, None), max_rows=max_rows)
    except ValueError as err:
        fail(str(err))
    changed = {k: v for k, v in (("epochs", epochs), ("max_batches_per_epoch", max_batches_per_epoch)) if v is not None}
    settings = dataclasses.replace(champion_train_options(manifest), **changed)
    workers = manifest["train_options"].get("workers", 2)
    root = join_uri(out, "monitor")
    start_ray(num_cpus or max(4, workers + 2))
    _clear_outputs(root, ["current", "challenger-data", "challenger", "report.json"])
    with progress_bar() as progress:
        archive = _ingest(current, join_uri(root, "current"), progress)
        task = progress.add_task("monitor", total=None)
        report = monitor_archive(model, archive, root, options, on_progress=lambda what, done, total: progress.update(
            task, completed=done, total=total, description=what))
        if retrain:
            step = progress.add_task("retrain", total=3)
            report["challenger"] = retrain_challenger(model, archive, root, options, settings, workers, on_progress=(
                lambda what, done, total: progress.update(step, completed=done, total=total, description=what)))
    path = write_report(report, root)
    table = Table(title=f"drift of {archive.accepted:,} current events against bundle {report['bundle_version']}")
    for column in ("family", "rows", "emb. dims drifted", "max PSI", "new values", "numerics drifted", "flag rate", "drifted"):
        table.add_column(column, justify="left" if column == "family" else "right")
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
    raise typer.Exit(EXIT_RETRAIN if report["retrain_recommended"] else EXIT_NO_DRIFT)


@app.command()
def run(
    inputs: list[str] | None = typer.Argument(None, help="OCSF files, directories or globs; none = a generated demo archive"),
    out: str = typer.Option("demo-out", "--out", "-o", help="Output directory for everything the run writes"),
    labels: str | None = typer.Option(None, help="Ground truth labels.parquet to evaluate against (found automatically beside a synth archive)"),
    events: int = typer.Option(200_000, help="Demo archive size when no INPUT is given"),
    seed: int = typer.Option(0, help="Demo archive seed"),
    epochs: int = typer.Option(3, help="Training epochs per family"),
    max_batches_per_epoch: int = typer.Option(40, help="Cap batches per epoch (0 = whole shard)"),
    workers: int = typer.Option(2, help="Ray Train workers (DDP)"),
    percentile: float | None = typer.Option(None, help="Flag events above this percentile of their family's reference scores [default: 99]"),
    contamination: float | None = typer.Option(None, help="Or: the expected share of anomalies (0.01 = --percentile 99)"),
    explain_top: int = typer.Option(20, help="Explain this many top-scored events"),
    num_cpus: int | None = typer.Option(None, help="Logical CPUs for a local Ray (default: 4 or workers + 2)"),
) -> None:
    """The main job: featurize → train → index → score → explain → report (and evaluate
    when ground truth is present). With no INPUT, first generates a demo archive."""
    from ocsf_ray.features import FeatureOptions
    from ocsf_ray.index import IndexOptions, score_featurized
    from ocsf_ray.io.sources import join_uri
    from ocsf_ray.io.storage import exists
    from ocsf_ray.rca import source_kinds
    from ocsf_ray.runtime import start_ray
    from ocsf_ray.train import TrainOptions

    threshold = _threshold(percentile, contamination)
    if labels and not exists(labels):
        fail(f"labels not found: {labels}")
    if inputs:
        _resolved(inputs)
    start_ray(num_cpus or max(4, workers + 2))
    started = time.perf_counter()
    if not inputs:
        archive_dir = join_uri(out, "archive")
        with console.status(f"generating a demo archive of {events:,} events in {archive_dir}"):
            _demo_archive(archive_dir, events, seed)
        inputs = [join_uri(archive_dir, "events")]
    labels = labels or _found_labels(inputs)
    archive = _featurize_step(inputs, out, FeatureOptions())
    bundle = join_uri(out, "bundle")
    options = TrainOptions(epochs=epochs, max_batches_per_epoch=max_batches_per_epoch)
    manifest = _train_step(out, bundle, options, workers, None, False, [], IndexOptions())
    _clear_outputs(out, ["scores", "explanations.json", "evaluation.json"])
    with progress_bar() as progress:
        task = progress.add_task("score", total=None)
        score_featurized(bundle, out, out, threshold, on_progress=lambda family, done, total: progress.update(
            task, completed=done, total=total, description=f"score {family}".strip()))
    explanations = _explain_step(bundle, out, explain_top)
    _score_tables(out, explanations)
    evaluation = _evaluate_step(out, labels) if labels else None
    if len(source_kinds(archive)) > 1:
        from ocsf_ray.rca import RcaOptions

        _rca_step(archive, out, join_uri(out, "scores"), None, _found_labels(inputs, "incidents.json"), RcaOptions())
    with console.status("writing the report"):
        path = _report_step(out, bundle, manifest, archive, threshold, explanations, evaluation, time.perf_counter() - started)
    console.print(f"report: {path}", highlight=False)


def _demo_archive(target: str, events: int, seed: int) -> None:
    """Generate a synth archive at `target`; on cluster storage, generated locally first
    and uploaded, so every node reads it from there."""
    import tempfile

    from ocsf_ray.io.storage import copy_tree, is_uri, remove
    from ocsf_ray.synth import SynthConfig, generate_archive

    if not is_uri(target):
        generate_archive(SynthConfig(out=target, events=events, seed=seed, overwrite=True))
        return
    with tempfile.TemporaryDirectory(prefix="ocsf-ray-demo-") as local:
        generate_archive(SynthConfig(out=local, events=events, seed=seed, overwrite=True))
        remove(target)
        copy_tree(local, target)


def _report_step(out: str, bundle: str, manifest: dict, archive, threshold: float, explanations: list[dict],
                 evaluation: dict | None, elapsed: float) -> str:
    from ocsf_ray.index.triage import embedding_sample, read_scores, score_counts
    from ocsf_ray.report import ReportInputs, lowest_flagged, write_report

    counts = score_counts(out)
    scores = read_scores(out, ["metadata_uid", "time", "family", "service", "anomaly_score", "percentile", "is_anomaly"], 1_000_000)
    largest = max(manifest["families"], key=lambda f: manifest["families"][f]["rows"])
    embeddings, embedded_scores, flagged = embedding_sample(bundle, out, largest, 1500, threshold)
    summary = [
        ("events read", f"{archive.rows_read:,}"), ("accepted", f"{archive.accepted:,}"),
        ("rejected", f"{archive.rejected:,}"), ("duplicate metadata_uid", f"{archive.duplicate_uids:,}"),
        ("families", str(len(archive.families))),
        ("scored", f"{int(counts['scored'].sum()):,}"), ("flagged", f"{int(counts['flagged'].sum()):,}"),
        ("threshold", f"percentile {threshold:g} of each family's reference scores"),
        ("model bundle", f"{bundle} (version {manifest['version']})"),
        ("elapsed", f"{elapsed:.0f} s"),
    ]
    return write_report(out, ReportInputs(
        title=f"ocsf-ray run: {out}", summary=summary, scores=scores,
        threshold_score=lowest_flagged(scores), threshold_percentile=threshold, top=explanations,
        embedding_sample=embeddings, embedding_scores=embedded_scores, embedding_flagged=flagged, evaluation=evaluation,
        embedding_family=largest,
    ))


@app.command()
def serve(
    model: str = typer.Option(..., "--model", "-m", help="A model bundle (from `train`, `tune` or `run`)"),
    host: str = typer.Option("127.0.0.1", help="Address the HTTP proxy listens on"),
    port: int = typer.Option(8000, help="Port the HTTP proxy listens on"),
) -> None:
    """Serve a bundle over HTTP on Ray Serve until Ctrl-C: POST /v1/score, /v1/reload,
    GET /v1/model, /healthz, /readyz, /metrics (docs/SERVING.md)."""
    from ocsf_ray.io.storage import absolute
    from serve_app.local import serve_until_interrupted
    from serve_app.settings import ServeSettings

    _bundle(model)
    model = absolute(model)  # replicas need not share this process's working directory
    serve_until_interrupted(ServeSettings(model=model), host, port, on_ready=lambda url: console.print(
        f"serving {model} at {url} (POST /v1/score); Ctrl-C stops", highlight=False))


def main() -> None:
    """The `ocsf-ray` console entry: the verbs, with any error that escapes them printed as
    one line and exit status 1 (set OCSF_RAY_TRACEBACK=1 to see the stack trace)."""
    import os
    import sys

    try:
        app()
    except Exception as err:  # noqa: BLE001 - the console gets one line, never a stack trace
        if os.environ.get("OCSF_RAY_TRACEBACK"):
            raise
        from rich.markup import escape

        first = next((line for line in str(err).splitlines() if line.strip()), "")
        console.print(f"[bold red]error:[/] {escape(type(err).__name__)}: {escape(first)} "
                      "(OCSF_RAY_TRACEBACK=1 shows where)", highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
