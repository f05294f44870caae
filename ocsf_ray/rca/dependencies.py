"""Service dependency graph: who calls whom, mined from spans or declared in YAML.

Spans are joined to their parent spans with a Ray Data hash join on (trace id, span
id), so the graph comes from archives of any size; an edge caller → callee carries the
number of calls seen. Archives without spans (or without parent ids) can declare the
graph in a YAML file mapping each caller to its callees.
"""

from __future__ import annotations

import networkx as nx
import polars as pl
import pyarrow as pa
import yaml

from ocsf_ray.io.ingest import CanonicalArchive
from ocsf_ray.io.storage import read_bytes
from ocsf_ray.runtime import collect

SPAN_FIELDS = ("span_uid", "span_id")
PARENT_FIELDS = ("span_parent_uid", "span_parent_id", "parent_span_id", "parent_uid")
TRACE_FIELDS = ("trace_uid", "trace_id")


def _first(columns, names: tuple[str, ...]) -> str | None:
    return next((c for c in names if c in columns), None)


def _span_links(batch: pa.Table) -> pa.Table:
    """(trace, span, parent, service) of each span, whatever the producer calls them."""
    frame = pl.from_arrow(batch)
    span, parent, trace = (_first(frame.columns, names) for names in (SPAN_FIELDS, PARENT_FIELDS, TRACE_FIELDS))
    if span is None or parent is None:
        return pa.table({"trace": pa.array([], pa.large_string()), "span": pa.array([], pa.large_string()),
                         "parent": pa.array([], pa.large_string()), "service": pa.array([], pa.large_string())})
    return frame.select(
        (pl.col(trace).cast(pl.String) if trace else pl.lit("")).fill_null("").alias("trace"),
        pl.col(span).cast(pl.String).alias("span"), pl.col(parent).cast(pl.String).alias("parent"),
        pl.col("service").cast(pl.String),
    ).drop_nulls("span").to_arrow()


def trace_dependencies(archive: CanonicalArchive, families: list[str]) -> nx.DiGraph:
    """Caller → callee edges with call counts; calls inside one service are not edges."""
    from ray.data.aggregate import Count
    from ray.data.expressions import col

    graph = nx.DiGraph()
    if not families:
        return graph
    datasets = [archive.dataset(f).map_batches(_span_links, batch_format="pyarrow") for f in families]
    spans = datasets[0].union(*datasets[1:]) if len(datasets) > 1 else datasets[0]
    parents = spans.select_columns(["trace", "span", "service"]).rename_columns({"service": "caller"})
    children = spans.filter(expr=col("parent").is_not_null()).select_columns(
        ["trace", "parent", "service"]).rename_columns({"service": "callee"})
    partitions = max(1, min(16, sum(archive.families[f].rows for f in families) // 500_000))
    calls = children.join(parents, "inner", partitions, on=("trace", "parent"), right_on=("trace", "span"))
    counts = collect(calls.filter(expr=col("caller") != col("callee"))
                     .groupby(["caller", "callee"]).aggregate(Count(alias_name="calls")))
    for row in counts.iter_rows(named=True):
        graph.add_edge(row["caller"], row["callee"], calls=int(row["calls"]))
    return graph


def declared_dependencies(path: str) -> nx.DiGraph:
    """A YAML mapping `caller: [callee, ...]` as a dependency graph."""
    declared = yaml.safe_load(read_bytes(path)) or {}
    if not isinstance(declared, dict) or not all(isinstance(v, list) for v in declared.values()):
        raise ValueError(f"{path}: expected a mapping of caller to a list of callees")
    graph = nx.DiGraph()
    for caller, callees in declared.items():
        graph.add_node(str(caller))
        graph.add_edges_from((str(caller), str(callee), {"calls": 0}) for callee in callees)
    return graph


def _trace_services(batch: pa.Table) -> pa.Table:
    frame = pl.from_arrow(batch)
    trace = _first(frame.columns, TRACE_FIELDS)
    if trace is None:
        return pa.table({"trace": pa.array([], pa.large_string()), "service": pa.array([], pa.large_string())})
    return frame.select(pl.col(trace).cast(pl.String).alias("trace"), pl.col("service").cast(pl.String)).drop_nulls().unique().to_arrow()


def log_service_aliases(archive: CanonicalArchive, log_families: list[str], span_families: list[str],
                        graph: nx.DiGraph) -> dict[str, str]:
    """Log services the span graph does not know → the span service their traces name most.

    Logs joined to spans by trace id: a producer that names its service differently in
    logs (a shipper, a container name) still lands its signals on the graph's node.
    """
    from ray.data.aggregate import Count
    from ray.data.expressions import col

    if not log_families or not span_families or graph.number_of_nodes() == 0:
        return {}
    unknown = sorted(set().union(*(archive.families[f].service_names for f in log_families)) - set(graph.nodes))
    if not unknown:
        return {}

    def sides(families: list[str]):
        datasets = [archive.dataset(f).map_batches(_trace_services, batch_format="pyarrow") for f in families]
        return datasets[0].union(*datasets[1:]) if len(datasets) > 1 else datasets[0]

    logs = sides(log_families).filter(expr=col("service").is_in(unknown)).rename_columns({"service": "log_service"})
    spans = sides(span_families).rename_columns({"service": "span_service"})
    pairs = collect(logs.join(spans, "inner", 4, on=("trace",)).groupby(["log_service", "span_service"])
                    .aggregate(Count(alias_name="traces")))
    if pairs.is_empty():
        return {}
    best = pairs.sort("traces", "span_service", descending=[True, False]).unique("log_service", keep="first")
    return dict(zip(best.get_column("log_service").to_list(), best.get_column("span_service").to_list()))
