"""Peers' own RCA code, run on one incident case: a ranked list of services per peer.

Peers, installed by bench/peers_env.sh into .bench-peers/ (appended to sys.path, so our
numpy, pandas, scikit-learn and networkx are the ones used):

- RCAEval 1.8.1 (https://github.com/phamquiluan/RCAEval): `RCAEval.e2e.baro.baro`,
  `RCAEval.e2e.nsigma`, `RCAEval.e2e.circa.circa`, `RCAEval.e2e.rcd.rcd`, called as its
  main.py does: `f(data, inject_time, dataset=...)` -> {"ranks": [column, ...]}. A
  non-None `dataset` makes RCAEval drop `time` and constant columns (`preprocess`);
  we pass "re1-ob", the name of its RE1 Online Boutique set. CIRCA is wrapped by
  RCAEval's `@rca`, which on any error prints "<name> failed" and returns the
  unranked column order: we catch that message and report a failure instead. CIRCA's
  scorer (RCAEval.graph_heads.rht) looks at 120 one-second steps before the inject time
  and 300 s after it, so on coarser data (synth archives: one sample per 345-691 s) it
  sees no normal period and ranks nothing: a failure there. It also splits column names
  on every `_`, so bench/rca.py names peer columns `<service>_<metric-with-dashes>`.
  RCD does not run: it calls `SkeletonDiscovery.local_skeleton_discovery`, which only
  RCD's authors' patched causal-learn has (RCAEval links it in by a script; neither
  causal-learn 0.1.2.3, its pin, nor 0.1.4.8 from the registry has it). Its wrapper stays,
  returning that AttributeError, and is left out of DEFAULT_PEERS.
- Salesforce PyRCA 1.0.1 (https://github.com/salesforce/PyRCA): `HT` (regression
  hypothesis testing on the true graph, with descendant adjustment as in its README),
  `EpsilonDiagnosis`, `RandomWalk` (on the true graph, started from the metrics its own
  `StatsDetector` flags in the anomalous period). Each `train(normal)` then
  `find_root_causes(abnormal)`; `root_cause_top_k` set to every column. PyRCA's
  RandomWalk ranks only the graph's source nodes (its `_get_node_levels(...)[0]`), at
  most 4, and EpsilonDiagnosis only metrics passing its test: a root outside them is a miss.
  Where no true graph is given, `learned_graph` runs PyRCA's own PC on the case frame.

Each peer: `f(frame, inject_time, graph=None) -> (services | None, reason | None)`, where
`frame` has a `time` column (or index) in seconds and one column per
`<service>_<metric>`, and `graph` is a networkx DiGraph cause -> effect over services or
columns. Services are in first-occurrence order of the ranked columns. A peer that
raises returns None and the reason; it never raises.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import time
import warnings
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd

PEERS = Path(__file__).resolve().parent.parent / ".bench-peers"
RCAEVAL_DATASET = "re1-ob"

# Whether each peer is told the injection time and given the true graph.
METADATA = {
    "rcaeval_baro": {"inject_time": True, "graph": False, "source": "RCAEval.e2e.baro.baro"},
    "rcaeval_nsigma": {"inject_time": True, "graph": False, "source": "RCAEval.e2e.nsigma"},
    "rcaeval_circa": {"inject_time": True, "graph": False, "source": "RCAEval.e2e.circa.circa (PC graph)"},
    "rcaeval_rcd": {"inject_time": True, "graph": False, "source": "RCAEval.e2e.rcd.rcd (seed 0)",
                    "runs": False},  # needs RCD's patched causal-learn (module docstring)
    "pyrca_ht": {"inject_time": True, "graph": True, "source": "pyrca.analyzers.ht.HT"},
    "pyrca_epsilon": {"inject_time": True, "graph": False, "source": "pyrca.analyzers.epsilon_diagnosis"},
    "pyrca_random_walk": {"inject_time": True, "graph": True, "source": "pyrca.analyzers.random_walk"},
}


def _import_path() -> None:
    if str(PEERS) not in sys.path:
        sys.path.append(str(PEERS))
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated")


def service_of(column: str) -> str:
    return column.split("_", 1)[0]


def services(columns) -> list[str]:
    """Ranked columns -> ranked services, first occurrence wins."""
    return list(dict.fromkeys(service_of(str(c)) for c in columns if str(c) != "time"))


def _with_time(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame if "time" in frame.columns else frame.rename_axis("time").reset_index()
    return frame.reset_index(drop=True)


def _split(frame: pd.DataFrame, inject_time: float):
    """Normal and anomalous periods without `time` and constant (in either) columns."""
    values = frame.drop(columns="time").astype(float).ffill().bfill()
    before, after = values[frame["time"] < inject_time], values[frame["time"] >= inject_time]
    keep = [c for c in values.columns if before[c].nunique() > 1 and after[c].nunique() > 1]
    return before[keep], after[keep]


def _column_graph(graph: nx.DiGraph, columns: list[str]) -> pd.DataFrame:
    """PyRCA's graph: adjacency DataFrame over `columns`, [i, j] = 1 when i causes j.
    A service graph becomes every column of the cause -> every column of the effect."""
    adj = pd.DataFrame(0, index=columns, columns=columns)
    by_service: dict[str, list[str]] = {}
    for c in columns:
        by_service.setdefault(service_of(c), []).append(c)
    for a, b in graph.edges:
        sources = [a] if a in adj.index else by_service.get(a, [])
        targets = [b] if b in adj.index else by_service.get(b, [])
        adj.loc[sources, targets] = 1
    return adj


def _guard(run):
    """Peer call -> (services, None), or (None, reason) on any error."""
    def wrapper(frame, inject_time, graph=None):
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        try:
            _import_path()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ranked = run(_with_time(frame), inject_time, graph)
            return (services(ranked), None) if ranked else (None, "empty ranking")
        except Exception as e:  # noqa: BLE001  a peer's failure is a result, not a crash
            return None, f"{type(e).__name__}: {e}"[:300]
        finally:  # PyRCA's get_logger calls logging.basicConfig(level="INFO"): undo it
            root.handlers[:], root.level = handlers, level
    wrapper.__name__ = run.__name__
    wrapper.__doc__ = run.__doc__
    return wrapper


@_guard
def rcaeval_baro(frame, inject_time, graph=None):
    from RCAEval.e2e.baro import baro
    return baro(frame, inject_time=inject_time, dataset=RCAEVAL_DATASET)["ranks"]


@_guard
def rcaeval_nsigma(frame, inject_time, graph=None):
    from RCAEval.e2e import nsigma
    return nsigma(frame, inject_time=inject_time, dataset=RCAEVAL_DATASET)["ranks"]


@_guard
def rcaeval_circa(frame, inject_time, graph=None):
    from RCAEval.e2e.circa import circa
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        out = circa(frame, inject_time=inject_time, dataset=RCAEVAL_DATASET)
    if "circa failed" in err.getvalue():
        raise RuntimeError(err.getvalue().strip().splitlines()[-1])
    return out["ranks"]


@_guard
def rcaeval_rcd(frame, inject_time, graph=None):
    from RCAEval.e2e.rcd import rcd
    return rcd(frame, inject_time=inject_time, dataset=RCAEVAL_DATASET, seed=0)["ranks"]


@_guard
def pyrca_ht(frame, inject_time, graph=None):
    from pyrca.analyzers.ht import HT
    if graph is None:
        raise ValueError("HT needs a graph")
    normal, abnormal = _split(frame, inject_time)
    model = HT(HT.config_class(graph=_column_graph(graph, list(normal.columns)), root_cause_top_k=normal.shape[1]))
    model.train(normal)
    return [n for n, _ in model.find_root_causes(abnormal, adjustment=True).root_cause_nodes]


@_guard
def pyrca_epsilon(frame, inject_time, graph=None):
    from pyrca.analyzers.epsilon_diagnosis import EpsilonDiagnosis
    normal, abnormal = _split(frame, inject_time)
    n = min(len(normal), len(abnormal))  # its test pairs normal and abnormal samples
    np.random.seed(0)  # its bootstrap draws from np.random
    model = EpsilonDiagnosis(EpsilonDiagnosis.config_class(root_cause_top_k=normal.shape[1]))
    model.train(normal.tail(n).reset_index(drop=True))
    return [c for c, _ in model.find_root_causes(abnormal.head(n).reset_index(drop=True)).root_cause_nodes]


@_guard
def pyrca_random_walk(frame, inject_time, graph=None):
    from pyrca.analyzers.random_walk import RandomWalk
    from pyrca.outliers.stats import StatsDetector
    if graph is None:
        raise ValueError("RandomWalk needs a graph")
    normal, abnormal = _split(frame, inject_time)
    detector = StatsDetector(StatsDetector.config_class())
    detector.logger.setLevel(logging.WARNING)
    detector.train(normal)
    anomalous = detector.predict(abnormal).anomalous_metrics
    if not anomalous:
        raise ValueError("StatsDetector flagged no metric")
    model = RandomWalk(RandomWalk.config_class(graph=_column_graph(graph, list(normal.columns))))
    return [c for c, _ in model.find_root_causes(anomalous, abnormal, random_seed=0).root_cause_nodes]


def learned_graph(frame: pd.DataFrame) -> tuple[nx.DiGraph | None, str | None]:
    """PyRCA's own PC (`pyrca.graphs.causal.pc.PC`, alpha 0.01) on the whole case frame:
    a column-level DiGraph for HT and RandomWalk where no true graph is given, or
    (None, reason). When PyRCA cannot orient the PC skeleton into a DAG, the partial DAG
    (undirected edges both ways) is used; HT then usually fails on its cycles."""
    try:
        _import_path()
        from pyrca.graphs.causal.pc import PC
        values = _with_time(frame).drop(columns="time").astype(float).ffill().bfill()
        values = values.loc[:, values.nunique() > 1]
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            try:
                adj = PC(PC.config_class()).train(values)
            except RuntimeError:  # "Orientation of the undirected edges failed."
                adj = PC(PC.config_class(run_pdag2dag=False)).train(values)
        return nx.from_pandas_adjacency(adj, create_using=nx.DiGraph), None
    except Exception as e:  # noqa: BLE001
        return None, f"{type(e).__name__}: {e}"[:300]


PEERS_BY_NAME = {f.__name__: f for f in (rcaeval_baro, rcaeval_nsigma, rcaeval_circa, rcaeval_rcd,
                                         pyrca_ht, pyrca_epsilon, pyrca_random_walk)}
DEFAULT_PEERS = tuple(n for n in PEERS_BY_NAME if METADATA[n].get("runs", True))


def rank_all(frame: pd.DataFrame, inject_time: float, graph: nx.DiGraph | None = None,
             peers=DEFAULT_PEERS) -> dict[str, dict]:
    """{peer: {"services": [...] | None, "reason": str | None, "seconds": float}}."""
    out = {}
    for name in peers:
        started = time.perf_counter()
        ranked, reason = PEERS_BY_NAME[name](frame, inject_time, graph if METADATA[name]["graph"] else None)
        out[name] = {"services": ranked, "reason": reason, "seconds": round(time.perf_counter() - started, 2)}
    return out
