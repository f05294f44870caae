"""The `ocsf-ray` command line: one verb per pipeline stage (see DESIGN.md).

Each verb checks its arguments, starts or joins Ray, calls the stage in
`ocsf_ray.pipeline` with a progress view and renders what it returns
(`ocsf_ray.cli_views`); a bad argument or input is one line on stderr and exit 2.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ocsf_ray.cli_views import ProgressView, console
from ocsf_ray.io.sources import InputError

app = typer.Typer(
    name="ocsf-ray",
    help="Distributed batch analytics of OCSF observability and security archives on Ray.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
NUM_CPUS_HELP = "Logical CPUs for a local Ray (default: all cores)"


@app.callback()
def _group() -> None:
    """Distributed batch analytics of OCSF observability and security archives on Ray."""


def fail(message: str) -> None:
    """Print `error: <message>` on one line and exit with status 2 (bad argument or input)."""
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def checked(call, *args, errors: tuple[type[Exception], ...] = (InputError,), **kwargs):
    """`call(*args, **kwargs)`, or a one-line error and exit 2 when it raises one of
    `errors`: exceptions whose message tells a user what in their input or arguments to fix."""
    try:
        return call(*args, **kwargs)
    except errors as err:
        fail(str(err))


def _resolved(inputs: list[str]) -> list:
    """The input files, or a one-line error before any Ray work."""
    from ocsf_ray.io import resolve_inputs

    return checked(resolve_inputs, inputs)


def _featurized(features: str) -> dict:
    """The families of a `featurize` output, or a one-line error."""
    from ocsf_ray.checks import featurized_families

    return checked(featurized_families, features)


def _bundle(model: str) -> dict:
    """A bundle's manifest, or a one-line error when it is not an indexed bundle."""
    from ocsf_ray.checks import indexed_manifest

    return checked(indexed_manifest, model)


def _percentile(percentile: float | None, contamination: float | None) -> float:
    from ocsf_ray.checks import flag_percentile

    return checked(flag_percentile, percentile, contamination)


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
    num_cpus: int | None = typer.Option(None, help=NUM_CPUS_HELP),
) -> None:
    """Generate a multi-source OCSF archive with injected incidents and ground truth."""
    from ocsf_ray.cli_views import show_synth
    from ocsf_ray.runtime import start_ray
    from ocsf_ray.synth import SynthConfig, generate_archive

    config = checked(SynthConfig, out=out, events=events, services=services, incidents=incidents, days=days, seed=seed,
                     format=format, overwrite=overwrite, errors=(ValueError,))
    start_ray(num_cpus)
    with ProgressView() as view:
        summary = checked(generate_archive, config, on_progress=lambda done, total: view("synth shards", done, total),
                          errors=(FileExistsError, ValueError))
    show_synth(summary, out)


@app.command()
def featurize(
    inputs: list[str] = typer.Argument(..., help="OCSF files, directories or globs (.parquet, .json, .jsonl, .ndjson, optionally .gz; local or s3://...)"),
    out: str = typer.Option(..., "--out", "-o", help="Output directory (local or URI)"),
    max_vocab: int = typer.Option(1000, help="Most frequent values kept per categorical column"),
    min_count: int = typer.Option(2, help="Minimum count for a value to enter a vocabulary"),
    include: list[str] = typer.Option([], help="Column to keep as a feature whatever the data says (repeatable)"),
    exclude: list[str] = typer.Option([], help="Column never to use as a feature (repeatable)"),
    num_cpus: int | None = typer.Option(None, help=NUM_CPUS_HELP),
) -> None:
    """Ingest OCSF events, fit a FeatureSpec per event family and write feature shards."""
    from ocsf_ray import pipeline
    from ocsf_ray.cli_views import show_featurized
    from ocsf_ray.features import FeatureOptions
    from ocsf_ray.runtime import start_ray

    _resolved(inputs)
    options = checked(FeatureOptions, max_vocab=max_vocab, min_count=min_count, include=tuple(include),
                      exclude=tuple(exclude), errors=(ValueError,))
    start_ray(num_cpus)
    with ProgressView() as view:
        featurized = pipeline.featurize(inputs, out, options, view)
    show_featurized(featurized, out)


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
    num_cpus: int | None = typer.Option(None, help=NUM_CPUS_HELP),
) -> None:
    """Pretrain one TabularResNet per event family (SCARF + NT-Xent on Ray Train), index
    each family's reference embeddings with FAISS and write the bundle."""
    from ocsf_ray import pipeline
    from ocsf_ray.cli_views import show_trained
    from ocsf_ray.index import IndexOptions
    from ocsf_ray.runtime import start_ray
    from ocsf_ray.train import TrainOptions

    found = _featurized(features)
    unknown = [f for f in family if f not in found]
    if unknown:
        fail(f"unknown family {', '.join(unknown)}; found {', '.join(found)}")
    if workers < 1:
        fail("need --workers >= 1")
    options = checked(TrainOptions, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                      temperature=temperature, corruption_rate=corruption_rate, d_model=d_model, n_blocks=n_blocks,
                      embedding_dim=embedding_dim, masked_feature_weight=masked_feature_weight,
                      max_batches_per_epoch=max_batches_per_epoch, errors=(ValueError,))
    index_options = checked(IndexOptions, k=k, reference_max=reference_max, exact_max=exact_max, nprobe=nprobe,
                            exclusion_minutes=exclusion_minutes, errors=(ValueError,))
    start_ray(num_cpus or max(4, workers + 2))
    with ProgressView() as view:
        trained = checked(pipeline.train, features, out, options, index_options, workers, gpu, resume, family, view)
    show_trained(trained)


@app.command()
def tune(
    config: str = typer.Option(..., "--config", "-c", help="A sweep definition, e.g. tune_configs/smoke.yaml"),
    features: str = typer.Option(..., "--features", "-f", help="A `featurize` output directory"),
    out: str = typer.Option(..., "--out", "-o", help="Bundle directory for the best trial"),
    family: str | None = typer.Option(None, help="Family to tune (default: the largest)"),
    num_cpus: int | None = typer.Option(None, help=NUM_CPUS_HELP),
) -> None:
    """Sweep hyperparameters with Ray Tune (ASHA) and export the best trial as a bundle."""
    from ocsf_ray import checks, pipeline
    from ocsf_ray.cli_views import show_sweep
    from ocsf_ray.runtime import start_ray

    sweep = checked(checks.load_sweep, config)
    _featurized(features)
    start_ray(num_cpus or max(4, sweep.workers_per_trial + 2))
    with ProgressView() as view:
        tuned = checked(pipeline.tune, sweep, features, out, family, view)
    show_sweep(tuned, sweep, out)


@app.command()
def score(
    inputs: list[str] = typer.Argument(..., help="OCSF files, directories or globs to score"),
    model: str = typer.Option(..., "--model", "-m", help="A model bundle (from `train`, `tune` or `run`)"),
    out: str = typer.Option(..., "--out", "-o", help="Output directory: scores/, rejects/, explanations.json"),
    percentile: float | None = typer.Option(None, help="Flag events above this percentile of their family's reference scores [default: 99]"),
    contamination: float | None = typer.Option(None, help="Or: the expected share of anomalies (0.01 = --percentile 99)"),
    explain_top: int = typer.Option(20, help="Explain this many top-scored events"),
    num_cpus: int | None = typer.Option(None, help=NUM_CPUS_HELP),
) -> None:
    """Score every event with a bundle (its FeatureSpecs, models, FAISS indexes and
    calibration) and explain the top anomalies."""
    from ocsf_ray import pipeline
    from ocsf_ray.cli_views import show_ingestion, show_scores
    from ocsf_ray.runtime import start_ray

    threshold = _percentile(percentile, contamination)
    _bundle(model)
    _resolved(inputs)
    start_ray(num_cpus)
    with ProgressView() as view:
        scored = pipeline.score(inputs, model, out, threshold, explain_top, view)
    show_ingestion(scored.archive, out, scored.elapsed_s)
    show_scores(out, scored.explanations, scored.run.unscored)


@app.command()
def evaluate(
    scores: str = typer.Option(..., "--scores", "-s", help="The output directory of `score` or `run` (holding scores/ and features/)"),
    labels: str = typer.Option(..., "--labels", "-l", help="Ground truth labels.parquet (metadata_uid, is_anomaly, incident_id)"),
) -> None:
    """AUROC, AUPRC, precision@k and recall of the scores against labels, beside HBOS,
    ECOD, IsolationForest, raw-feature k-NN (same time exclusion), template rarity,
    severity and random rankings of the same events."""
    from ocsf_ray import pipeline
    from ocsf_ray.cli_views import show_evaluation

    out = scores.rstrip("/").removesuffix("/scores") if scores.rstrip("/").endswith("/scores") else scores
    with console.status("evaluating against ground truth and baselines"):
        result = checked(pipeline.evaluate, out, labels)
    show_evaluation(result, out)


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
    from ocsf_ray import checks, pipeline
    from ocsf_ray.cli_views import show_rca
    from ocsf_ray.rca import RcaOptions
    from ocsf_ray.runtime import start_ray

    _resolved(inputs)
    checked(checks.check_rca_inputs, scores, dependencies, incidents)
    start_ray(num_cpus or 4)
    options = RcaOptions(bucket_s=bucket_seconds, threshold=threshold, max_lag_minutes=max_lag_minutes)
    with ProgressView() as view:
        archive = pipeline.ingest(inputs, out, view)
        result = pipeline.rca(archive, out, scores, dependencies, incidents or checks.found_ground_truth(inputs, "incidents.json"),
                              options, view)
    show_rca(result, out)


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

    from ocsf_ray import pipeline
    from ocsf_ray.cli_views import show_monitor
    from ocsf_ray.monitor import EXIT_NO_DRIFT, EXIT_RETRAIN, MonitorOptions, champion_train_options
    from ocsf_ray.runtime import start_ray

    manifest = _bundle(model)
    _resolved(current)
    options = checked(MonitorOptions, percentile=_percentile(percentile, None), max_rows=max_rows, errors=(ValueError,))
    changed = {k: v for k, v in (("epochs", epochs), ("max_batches_per_epoch", max_batches_per_epoch)) if v is not None}
    settings = checked(dataclasses.replace, champion_train_options(manifest), **changed, errors=(ValueError,))
    workers = manifest.workers
    start_ray(num_cpus or max(4, workers + 2))
    with ProgressView() as view:
        found = pipeline.monitor(model, current, out, options, retrain, settings, workers, view)
    show_monitor(found.report, found.archive, found.path)
    raise typer.Exit(EXIT_RETRAIN if found.report["retrain_recommended"] else EXIT_NO_DRIFT)


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
    from ocsf_ray import cli_views as views
    from ocsf_ray.pipeline import PipelineOptions, run_pipeline
    from ocsf_ray.runtime import start_ray
    from ocsf_ray.train import TrainOptions

    threshold = _percentile(percentile, contamination)
    training = checked(TrainOptions, epochs=epochs, max_batches_per_epoch=max_batches_per_epoch, errors=(ValueError,))
    options = checked(PipelineOptions, train=training, workers=workers, percentile=threshold, explain_top=explain_top,
                      labels=labels, demo_events=events, demo_seed=seed, errors=(ValueError,))
    if inputs:
        _resolved(inputs)
    start_ray(num_cpus or max(4, workers + 2))
    with ProgressView() as view:
        result = checked(run_pipeline, inputs, out, options, view)
    views.show_featurized(result.featurized, out)
    views.show_trained(result.trained)
    views.show_scores(out, result.scored.explanations)
    if result.evaluation:
        views.show_evaluation(result.evaluation, out)
    if result.rca:
        views.show_rca(result.rca, out)
    console.print(f"report: {result.report}", highlight=False)


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
