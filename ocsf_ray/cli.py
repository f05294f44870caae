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
    console.print(f"[bold red]error:[/] {message}", highlight=False)
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
