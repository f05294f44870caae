"""A causal graph as GraphML (for tools) and as a PNG a person can read."""

from __future__ import annotations

import io

import networkx as nx

SOURCE_COLOURS = {"log": "#4c78a8", "trace": "#f58518", "metric": "#54a24b", "config": "#b279a2"}
OTHER_COLOUR = "#9d9d9d"


def graphml(graph: nx.DiGraph) -> bytes:
    """GraphML keeps scalar attributes only: None becomes an empty string."""
    clean = nx.DiGraph(**{k: v for k, v in graph.graph.items() if v is not None})
    for node, attrs in graph.nodes(data=True):
        clean.add_node(node, **{k: ("" if v is None else v) for k, v in attrs.items()})
    clean.add_edges_from(graph.edges(data=True))
    buffer = io.BytesIO()
    nx.write_graphml(clean, buffer)
    return buffer.getvalue()


def _label(attrs: dict) -> str:
    return f"{attrs['service']}\n{attrs['signal']}"


def picture(graph: nx.DiGraph, top: str | None, title: str) -> bytes:
    """Nodes coloured by source, laid out left to right by onset, the top candidate ringed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    figure, axes = plt.subplots(figsize=(12, 7), dpi=110)
    if graph.number_of_nodes():
        onsets = sorted({a["onset"] for _, a in graph.nodes(data=True)})
        column = {t: i for i, t in enumerate(onsets)}
        rows: dict[int, int] = {}
        position = {}
        for node, attrs in sorted(graph.nodes(data=True), key=lambda p: (p[1]["onset"], p[1]["service"])):
            x = column[attrs["onset"]]
            rows[x] = rows.get(x, 0) + 1
            position[node] = (x, -rows[x] + (0.5 if x % 2 else 0))
        colours = [SOURCE_COLOURS.get(a["source"], OTHER_COLOUR) for _, a in graph.nodes(data=True)]
        sizes = [900 if n == top else 500 for n in graph.nodes]
        nx.draw_networkx_edges(graph, position, ax=axes, alpha=0.35, arrows=True, arrowsize=10,
                               width=[0.5 + 2 * d.get("weight", 0) for *_, d in graph.edges(data=True)])
        nx.draw_networkx_nodes(graph, position, ax=axes, node_color=colours, node_size=sizes,
                               edgecolors=["#d62728" if n == top else "white" for n in graph.nodes],
                               linewidths=[3.5 if n == top else 1 for n in graph.nodes])
        nx.draw_networkx_labels(graph, position, ax=axes, font_size=7,
                                labels={n: _label(a) for n, a in graph.nodes(data=True)})
    handles = [Line2D([], [], marker="o", linestyle="", color=c, label=s) for s, c in SOURCE_COLOURS.items()]
    handles.append(Line2D([], [], marker="o", linestyle="", markerfacecolor="white", markeredgecolor="#d62728",
                          markeredgewidth=2.5, label="top candidate"))
    axes.legend(handles=handles, loc="upper right", fontsize=8)
    axes.set_title(title + "  (left to right: onset; arrow u → v: u can explain v)", fontsize=10)
    axes.axis("off")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()
