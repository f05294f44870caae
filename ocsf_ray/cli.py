"""The `ocsf-ray` command line: one verb per pipeline stage (see DESIGN.md).

The CLI owns the console: rich progress while work runs, a summary table at the end,
and a one-line reason with a non-zero exit when an argument or input is bad.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

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
    from ocsf_ray.io.sources import filesystem_for, join_uri
    import pyarrow.fs as pafs

    for name in names:
        fs, inner, _ = filesystem_for(join_uri(out, name))
        info = fs.get_file_info(inner)
        if info.type == pafs.FileType.Directory:
            fs.delete_dir(inner)
        elif info.type == pafs.FileType.File:
            fs.delete_file(inner)


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
    num_cpus: Optional[int] = typer.Option(None, help="Logical CPUs for a local Ray (default: all cores)"),
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
    num_cpus: Optional[int] = typer.Option(None, help="Logical CPUs for a local Ray (default: all cores)"),
) -> None:
    """Ingest OCSF events, fit a FeatureSpec per event family and write feature shards."""
    from ocsf_ray.features import FeatureOptions, featurize_archive
    from ocsf_ray.features.transform import feature_columns
    from ocsf_ray.io import InputError, read_events, resolve_inputs
    from ocsf_ray.runtime import start_ray

    try:
        files = resolve_inputs(inputs)
    except InputError as err:
        fail(str(err))
    if max_vocab < 1 or min_count < 1:
        fail("--max-vocab and --min-count must be at least 1")
    options = FeatureOptions(max_vocab=max_vocab, min_count=min_count, include=tuple(include), exclude=tuple(exclude))
    start_ray(num_cpus)
    _clear_outputs(out, ["canonical", "features", "rejects", "feature_spec.json"])
    started = time.perf_counter()
    with progress_bar() as progress:
        ingest = progress.add_task(f"ingest {len(files)} file(s)", total=None)
        archive = read_events(inputs, out, on_progress=lambda done, total: progress.update(ingest, completed=done, total=total))
        fit = progress.add_task("features", total=len(archive.families))
        result = featurize_archive(
            archive, out, options,
            on_progress=lambda family, done, total: progress.update(
                fit, completed=done, total=total, description=f"features {family}".strip()
            ),
        )
    elapsed = time.perf_counter() - started

    summary = Table(title="ingestion", show_header=False)
    summary.add_row("files", f"{archive.files:,}")
    summary.add_row("rows read", f"{archive.rows_read:,}")
    summary.add_row("accepted", f"{archive.accepted:,}")
    summary.add_row("rejected", f"{archive.rejected:,}" + (f"  → {out}/rejects/" if archive.rejected else ""))
    summary.add_row("throughput", f"{archive.rows_read / elapsed:,.0f} events/s ({elapsed:.1f} s)")
    console.print(summary)
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
    gpu: Optional[bool] = typer.Option(None, "--gpu/--no-gpu", help="Default: use GPUs when the cluster has them"),
    resume: bool = typer.Option(False, help="Continue the runs in OUT/_runs from their latest checkpoints"),
    num_cpus: Optional[int] = typer.Option(None, help="Logical CPUs for a local Ray (default: all cores)"),
) -> None:
    """Pretrain one TabularResNet per event family (SCARF + NT-Xent on Ray Train) into a bundle."""
    from ocsf_ray.runtime import start_ray
    from ocsf_ray.train import TrainOptions, train_bundle

    found = _featurized(features)
    unknown = [f for f in family if f not in found]
    if unknown:
        fail(f"unknown family {', '.join(unknown)}; found {', '.join(found)}")
    if workers < 1 or epochs < 1 or batch_size < 2 or not 0 < corruption_rate < 1 or temperature <= 0:
        fail("need --workers >= 1, --epochs >= 1, --batch-size >= 2, 0 < --corruption-rate < 1, --temperature > 0")
    options = TrainOptions(
        epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, temperature=temperature,
        corruption_rate=corruption_rate, d_model=d_model, n_blocks=n_blocks, embedding_dim=embedding_dim,
        masked_feature_weight=masked_feature_weight, max_batches_per_epoch=max_batches_per_epoch,
    )
    start_ray(num_cpus or max(4, workers + 2))
    with progress_bar() as progress:
        task = progress.add_task("train", total=len(family or found))
        result = train_bundle(
            features, out, options, workers=workers, use_gpu=gpu, resume=resume, families=family or None,
            on_family=lambda name, done, total: progress.update(task, completed=done, description=f"train {name}".strip()),
        )
    table = Table(title=f"model bundle {result.manifest['version']}")
    for column in ("family", "rows", "epochs", "best epoch", "val top-1", "untrained top-1", "val loss"):
        table.add_column(column, justify="left" if column == "family" else "right")
    for name, info in result.manifest["families"].items():
        table.add_row(
            name, f"{info['rows']:,}", str(info["epochs_run"]), str(info["best_epoch"]),
            f"{info['val_top1']:.3f}", f"{info['untrained_val_top1']:.3f}", f"{info['val_loss']:.3f}",
        )
    console.print(table)
    for name, reason in result.manifest["skipped"].items():
        console.print(f"skipped {name}: {reason}", highlight=False)
    console.print(f"bundle: {out}", highlight=False)


@app.command()
def tune(
    config: str = typer.Option(..., "--config", "-c", help="A sweep definition, e.g. tune_configs/smoke.yaml"),
    features: str = typer.Option(..., "--features", "-f", help="A `featurize` output directory"),
    out: str = typer.Option(..., "--out", "-o", help="Bundle directory for the best trial"),
    family: Optional[str] = typer.Option(None, help="Family to tune (default: the largest)"),
    num_cpus: Optional[int] = typer.Option(None, help="Logical CPUs for a local Ray (default: all cores)"),
) -> None:
    """Sweep hyperparameters with Ray Tune (ASHA) and export the best trial as a bundle."""
    from pydantic import ValidationError

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
    table = Table(title=f"sweep over {chosen.family}")
    keys = sorted(sweep.search_space)
    for column in (*keys, "epochs", "best val top-1"):
        table.add_column(column, justify="right")
    for trial in sorted(trials, key=lambda t: -(t["best_val_top1"] or 0)):
        table.add_row(*(f"{trial[k]:.4g}" if isinstance(trial[k], float) else str(trial[k]) for k in keys),
                      str(trial["epochs"]), f"{trial['best_val_top1'] or 0:.3f}")
    console.print(table)
    console.print(f"best trial exported to {out} (version {manifest['version']})", highlight=False)


if __name__ == "__main__":
    app()
