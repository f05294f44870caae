"""Connecting to Ray: a cluster when RAY_ADDRESS says so, else a local Ray started here;
and collecting a small dataset to the driver.

Only entry points (the CLI, jobs/, the Serve app) call `start_ray`; library code assumes
Ray is running.
"""

from __future__ import annotations

import logging
import os

import polars as pl
import pyarrow as pa


def start_ray(num_cpus: int | None = None, quiet: bool = True) -> None:
    """Join the cluster at RAY_ADDRESS, or start a local Ray with num_cpus logical CPUs.

    quiet: our CLI draws its own progress, so Ray Data's bars and INFO logs are muted.
    """
    import ray

    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS")
    ray.init(
        address=address or None,
        num_cpus=None if address else num_cpus,
        include_dashboard=False,
        log_to_driver=not quiet,
        logging_level=logging.WARNING if quiet else logging.INFO,
    )
    context = ray.data.DataContext.get_current()
    # Ray Data's V2 Parquet reader lists files in tasks that each start footer-reading
    # actors; a few reads at once (RCA unions every family) fill a small cluster's CPUs
    # with listing tasks whose actors can then never be placed, and the job hangs. The
    # V1 reader plans on the driver and has no such wait.
    context.use_datasource_v2 = False
    if quiet:
        context.enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        logging.getLogger("ray").setLevel(logging.WARNING)


def collect(dataset) -> pl.DataFrame:
    """A Ray dataset's rows on the driver, for results small by construction (one row
    per group of an aggregation, a sample): blocks of differing schemas are unified
    (missing columns null), empty blocks skipped; an empty frame when there are no rows."""
    import ray

    tables = [t for t in ray.get(dataset.to_arrow_refs()) if t.num_rows]
    return pl.from_arrow(pa.concat_tables(tables, promote_options="permissive")) if tables else pl.DataFrame()
