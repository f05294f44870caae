"""RCA incident cases for ocsf-ray and its peers: PyRCA's own simulator, and an RCAEval-layout simulator of ours.

Each case is one incident with one true root service, in two forms:

- for peers (bench/rca_peers.py): `Case.frame`, a wide table with a `time` column
  (epoch seconds) and one column per `<service>_<metric>`, plus the inject time and the
  true causal graph (cause -> effect, over services);
- for ocsf-ray: `<case>/events/metrics.parquet` (OCSF class 99 "Metric" events:
  `service.name`, `metric.name`, `metric.value`, `metric.type` gauge/counter, as
  ocsf_ray/synth/metrics.py writes them), `<case>/ground_truth/incidents.json`
  (ocsf_ray/rca/accuracy.py INCIDENT_FIELDS) and `<case>/dependencies.yaml` (the
  `caller: [callee, ...]` mapping of ocsf_ray/rca/dependencies.py).

Families:

- `pyrca_cases`: Salesforce PyRCA's own simulator, `pyrca.simulation.data_gen`
  (sfr-pyrca 1.0.1, https://github.com/salesforce/PyRCA): `DAGGen` random DAG (i -> j:
  i causes j; node 0 the one sink, the "frontend"), `DataGen` normal data, then
  `AnomalyDataGen` anomalous data with a fault at one node (anomaly types 0, a constant
  shift, and 1, a noise-scale change; draws with more than one root, or that PyRCA
  gives up on, are redrawn). PyRCA
  seeds nothing itself (`np.random.default_rng()` per weight), so generation runs under
  `_seeded`, which makes its unseeded generators draw from the case seed. One sample every
  10 s: 2 h normal, 20 min anomalous. Each node is a service with one metric, `value`.
- `rcaeval_cases`: RCAEval's RE1 layout (rcaeval 1.8.1, https://github.com/phamquiluan/RCAEval;
  `<svc>_<fault>/<rep>/data.csv` with `time` and `<svc>_cpu|mem|latency...` columns, and
  `inject_time.txt` in epoch seconds), filled by the small simulator below (`_simulate`).
  1 h at 15 s resolution, inject at 35-45 min, the fault lasting 10 min. Its rules:
  * system: a random call DAG of 8-12 services (a tree from `frontend` plus extra
    edges); services share 2-4 nodes. Every call has calls-per-request (0.5-2), a
    timeout (80-400 ms), 0-3 retries with a 5-50 ms backoff, a 0-1 sample measurement
    lag, and in 70 % of calls the caller surfaces a callee's final failure as its own
    error (otherwise it falls back quietly).
  * load (a common cause): traffic shared by every service, a slow wave plus 0-3 surges
    of +40-120 % for 2-6 min at uniformly random times (before, during or after the
    fault). Requests per service follow it; latency rises with it by a per-service
    sensitivity; CPU follows each service's own request rate.
  * a caller's latency is its own plus, per call, (expected attempts) x (the callee's
    latency as the caller sees it, cut at the timeout) + backoffs; a timed-out or
    failed attempt is retried, so a callee slower than the timeout costs the caller up
    to (retries + 1) x timeout, and the retries add to the callee's request rate.
    A caller's error is 1 - (1 - own) x (1 - P(all attempts fail)) when it surfaces.
    So a caller's latency or error change can be as large as, or larger than, the root's.
  * noise: latency log-normal, error ratio drawn as binomial counts of the requests,
    CPU, memory (with a GC sawtooth and a slow drift); about a third of the series get
    heavy-tailed noise (Student t, 3 degrees of freedom, plus bursts of 1-10 noise
    scales in 1 % of the samples, Pareto-sized).
  * faults at one non-frontend service: `cpu_hog` (+30-60 % CPU, its latency x1.3-2,
    co-located services lose 10-30 % of the hog as steal, with some latency);
    `memory_leak` (memory ramps +10-60 % over the 10 min, GC pauses raise latency and
    CPU with it); `delay` (100-600 ms on the service's egress: callers see all of it,
    the service's own latency timer 20-100 % of it); `loss` (10-50 % packet loss:
    callers see it as failed attempts plus retransmission delay, the service's own
    error ratio up to 30 % of it).
  * `requests_total` is a cumulative counter, restarting from zero once in half the cases.
  Nothing in these rules looks at any method; the parameters are fixed before a method runs.

    python bench/rca_cases.py /tmp/rca-cases      # writes both families, prints a summary
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

PEERS = Path(__file__).resolve().parent.parent / ".bench-peers"  # bench/peers_env.sh
START_S = 1_700_000_000  # 2023-11-14T22:13:20Z, the first sample of every case


@dataclass
class Case:
    name: str
    family: str
    folder: Path
    frame: pd.DataFrame  # `time` (epoch s) + one float column per `<service>_<metric>`
    inject_time: int  # epoch s of the first anomalous sample
    root: str  # true root service
    fault: str
    graph: nx.DiGraph | None  # cause -> effect between services (callee -> caller)
    counters: list[str] = field(default_factory=list)  # cumulative columns in `frame`

    @property
    def events_dir(self) -> Path:
        return self.folder / "events"

    @property
    def incidents_path(self) -> Path:
        return self.folder / "ground_truth" / "incidents.json"

    @property
    def dependencies_path(self) -> Path:
        return self.folder / "dependencies.yaml"

    def incidents(self) -> list[dict]:
        return json.loads(self.incidents_path.read_text())


def service_of(column: str) -> str:
    """`svc-3_latency` -> `svc-3` (RCAEval's convention: the service is before the first `_`)."""
    return column.split("_", 1)[0]


def counters_as_rates(frame: pd.DataFrame, counters: list[str]) -> pd.DataFrame:
    """Cumulative columns as per-second rates, a drop counted as a restart from zero."""
    out = frame.copy()
    dt = frame["time"].diff()
    for c in counters:
        step = frame[c].diff()
        out[c] = step.where(step >= 0, frame[c]) / dt
    return out.iloc[1:].reset_index(drop=True)


# --- writing a case ------------------------------------------------------------------

def _write_case(case: Case, end_s: int) -> Case:
    """OCSF metric events, ground truth and declared dependencies under `case.folder`."""
    case.events_dir.mkdir(parents=True, exist_ok=True)
    long = case.frame.melt(id_vars="time", var_name="column", value_name="value").dropna()
    long = long.sort_values(["time", "column"], kind="stable").reset_index(drop=True)
    n = len(long)
    service = long["column"].map(service_of)
    metric = long["column"].str.split("_", n=1).str[1]
    counters = set(case.counters)
    struct = lambda **cols: pa.StructArray.from_arrays(list(cols.values()), names=list(cols))  # noqa: E731
    table = pa.table({
        "metadata": struct(uid=pa.array([f"{case.name}-{i}" for i in range(n)]),
                           version=pa.array(["1.1.0"] * n),
                           product=struct(name=pa.array([case.family] * n), vendor_name=pa.array(["bench"] * n))),
        "time": pa.array((long["time"].to_numpy(np.int64) * 1000)),
        "class_uid": pa.array(np.full(n, 99, np.int32)), "class_name": pa.array(["Metric"] * n),
        "category_uid": pa.array(np.full(n, 6, np.int32)), "activity_id": pa.array(np.zeros(n, np.int32)),
        "type_uid": pa.array(np.full(n, 9900, np.int64)), "severity_id": pa.array(np.ones(n, np.int32)),
        "metric": struct(name=pa.array(metric.to_list()), value=pa.array(long["value"].to_numpy(float)),
                         type=pa.array(["counter" if c in counters else "gauge" for c in long["column"]])),
        "service": struct(name=pa.array(service.to_list())),
        "device": struct(hostname=pa.array((service + "-0").to_list())),
    })
    pq.write_table(table, case.events_dir / "metrics.parquet", compression="zstd")
    case.incidents_path.parent.mkdir(parents=True, exist_ok=True)
    case.incidents_path.write_text(json.dumps([{
        "id": case.name, "type": case.fault, "root_service": case.root,
        "start": case.inject_time * 1000, "end": end_s * 1000,
    }], indent=2))
    calls = {s: [] for s in sorted({service_of(c) for c in case.frame.columns if c != "time"})}
    for cause, effect in (case.graph.edges if case.graph is not None else []):
        calls[effect].append(cause)  # the effect calls the cause
    case.dependencies_path.write_text(yaml.safe_dump({k: sorted(v) for k, v in calls.items()}))
    return case


# --- PyRCA's simulator -----------------------------------------------------------------

@contextlib.contextmanager
def _seeded(seed: int):
    """Make PyRCA's unseeded `np.random.default_rng()` calls (and np.random.*) reproducible."""
    real = np.random.default_rng
    master = real(seed)
    np.random.seed(seed)
    np.random.default_rng = lambda s=None: real(master.integers(2**63) if s is None else s)
    try:
        yield master
    finally:
        np.random.default_rng = real


def pyrca_cases(root: Path, seed: int, count: int = 8, step_s: int = 10,
                normal: int = 720, anomalous: int = 120) -> list[Case]:
    """`count` incidents from `pyrca.simulation.data_gen`, each on its own random DAG."""
    if str(PEERS) not in sys.path:
        sys.path.append(str(PEERS))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyrca/__init__: pkg_resources is deprecated
        from pyrca.simulation.data_gen import AnomalyDataGen, DAGGen, DataGen

    cases = []
    with _seeded(seed) as rng:
        for k in range(count):
            anomaly_type = int(k % 2)
            while True:  # PyRCA raises when a fault cannot reach node 0 (bounded sin/tanh): draw again
                num_node = int(rng.integers(8, 16))
                dag = DAGGen(DAGGen.config_class(num_node=num_node, num_edge=int(rng.integers(num_node, 2 * num_node)),
                                                 rng=rng)).gen()
                data, parent_w, noise_w, func, noise = DataGen(DataGen.config_class(dag=dag, num_samples=normal)).gen()
                try:
                    with contextlib.redirect_stdout(io.StringIO()):  # it prints alpha before giving up
                        anomaly, fault = AnomalyDataGen(AnomalyDataGen.config_class(
                            parent_weights=parent_w, noise_weights=noise_w, noise_type=noise, func_type=func,
                            baseline=float(data[:, 0].mean()), threshold=float(3 * data[:, 0].std()),
                            num_samples=anomalous, anomaly_type=anomaly_type)).gen()
                except TypeError:  # its `raise "<message>"`
                    continue
                if np.count_nonzero(fault) == 1 and np.isfinite(anomaly).all():
                    break
            names = [f"node-{i}" for i in range(num_node)]
            values = np.vstack([data, anomaly])
            frame = pd.DataFrame(values, columns=[f"{s}_value" for s in names])
            frame.insert(0, "time", START_S + step_s * np.arange(len(values)))
            graph = nx.DiGraph()
            graph.add_nodes_from(names)
            graph.add_edges_from((names[i], names[j]) for i, j in zip(*np.nonzero(dag)))
            name = f"pyrca-s{seed}-{k}"
            case = Case(name, "pyrca", Path(root) / "pyrca" / name, frame, START_S + step_s * normal,
                        names[int(np.flatnonzero(fault)[0])], ["shift", "noise"][anomaly_type], graph)
            cases.append(_write_case(case, int(frame["time"].iloc[-1])))
    return cases


# --- RE1-layout simulator ----------------------------------------------------------------

SERVICES = ("frontend", "cart", "checkout", "payment", "shipping", "currency", "email", "recommend",
            "catalog", "ad", "auth", "user")
FAULTS = ("cpu_hog", "memory_leak", "delay", "loss")


def _lagged(x: np.ndarray, lag: int) -> np.ndarray:
    return np.concatenate([np.full(lag, x[0]), x[:-lag]]) if lag else x


def _noise(rng: np.random.Generator, samples: int, scale: float) -> np.ndarray:
    """Zero-centred relative noise: Gaussian for most series, heavy-tailed (Student t with
    3 degrees of freedom plus rare one-sided Pareto bursts of up to 10 scales) for about a
    third of them."""
    if rng.random() < 1 / 3:
        bursts = np.where(rng.random(samples) < 0.01, np.minimum(rng.pareto(2.0, samples) + 1, 10), 0.0)
        return scale * (rng.standard_t(3, samples) / np.sqrt(3) + bursts)
    return scale * rng.standard_normal(samples)


def _load(rng: np.random.Generator, samples: int, step_s: int) -> np.ndarray:
    """Traffic entering the system, shared by every service (a common cause): a slow wave,
    noise, and 0-3 surges of +40-120 % lasting 2-6 min at uniformly random times."""
    t = np.arange(samples)
    load = 1 + 0.15 * np.sin(2 * np.pi * t / samples + rng.uniform(0, 6)) + rng.normal(0, 0.03, samples)
    for _ in range(int(rng.integers(0, 4))):
        at, length = int(rng.integers(0, samples)), int(rng.integers(120, 361)) // step_s
        load[at:at + length] *= 1 + rng.uniform(0.4, 1.2)
    return load


def _simulate(rng: np.random.Generator, fault: str, step_s: int, samples: int):
    """One system and one fault; the rules are in the module docstring."""
    n = int(rng.integers(8, 13))
    names = list(SERVICES[:n])
    calls = nx.DiGraph()  # caller -> callee; callees have the larger index
    calls.add_nodes_from(names)
    for i in range(1, n):
        calls.add_edge(names[int(rng.integers(0, i))], names[i])
    for _ in range(int(rng.integers(0, n // 2 + 1))):
        j, i = sorted(rng.choice(n, 2, replace=False))
        calls.add_edge(names[j], names[i])
    for a, b in calls.edges:  # per call: calls per request, timeout (ms), retries, backoff, errors surfaced
        calls.edges[a, b].update(m=rng.uniform(0.5, 2.0), timeout=rng.uniform(80, 400), retries=int(rng.integers(0, 4)),
                                 backoff=rng.uniform(5, 50), surfaces=rng.random() < 0.7, lag=int(rng.integers(0, 2)))
    node = {s: int(rng.integers(0, max(2, n // 3))) for s in names}  # services share nodes (hosts)
    root = names[int(rng.integers(1, n))]  # the frontend is never the root
    inject = int(rng.integers(35 * 60, 45 * 60)) // step_s
    on = np.zeros(samples)
    on[inject:inject + 600 // step_s] = 1.0
    ramp = np.cumsum(on) / max(on.sum(), 1) * on
    load = _load(rng, samples, step_s)
    surge = np.maximum(load - 1, 0)

    # each service on its own: latency (ms), error ratio, cpu (%), memory (bytes)
    own_lat, own_err, cpu, mem, steal = {}, {}, {}, {}, {s: np.zeros(samples) for s in names}
    for s in names:
        own_lat[s] = rng.uniform(2, 40) * (1 + rng.uniform(0.2, 1.0) * surge) * np.exp(_noise(rng, samples, 0.12))
        own_err[s] = rng.uniform(0.0005, 0.01) * np.maximum(1 + _noise(rng, samples, 0.3), 0)
        cpu[s] = rng.uniform(10, 40) * (1 + _noise(rng, samples, 0.05))  # at median traffic
        gc = rng.uniform(0.03, 0.12) * ((np.arange(samples) * step_s / rng.uniform(120, 600)) % 1)  # GC sawtooth
        mem[s] = rng.uniform(2e8, 1e9) * (1 + gc + np.cumsum(rng.normal(0, 2e-4, samples)) + _noise(rng, samples, 0.005))
    client_delay = {s: np.zeros(samples) for s in names}  # seen by callers, not by the service's own metrics
    client_loss = {s: np.zeros(samples) for s in names}
    if fault == "cpu_hog":
        hog = on * rng.uniform(30, 60)
        cpu[root] = cpu[root] + hog
        own_lat[root] = own_lat[root] * (1 + on * rng.uniform(0.3, 1.0))
        for s in names:  # co-located services lose CPU time too
            if s != root and node[s] == node[root]:
                steal[s] = hog * rng.uniform(0.1, 0.3)
                own_lat[s] = own_lat[s] * (1 + steal[s] / 100 * rng.uniform(0.5, 1.5))
    elif fault == "memory_leak":
        mem[root] = mem[root] * (1 + ramp * rng.uniform(0.1, 0.6))
        pause = ramp * rng.uniform(0.2, 1.0)  # GC pauses grow as the heap fills
        own_lat[root] = own_lat[root] * (1 + pause)
        cpu[root] = cpu[root] * (1 + 0.5 * pause)
    elif fault == "delay":  # egress delay: callers wait the full delay, the root's own timer sees a part
        d = rng.uniform(100, 600)
        client_delay[root] = on * d
        own_lat[root] = own_lat[root] + on * d * rng.uniform(0.2, 1.0)
    else:  # packet loss: callers see timeouts and resets, the root sees a part of them as errors
        p = rng.uniform(0.1, 0.5)
        client_loss[root] = on * p
        own_err[root] = np.minimum(own_err[root] + on * p * rng.uniform(0, 0.3), 1)
        client_delay[root] = on * p * 200  # TCP retransmission timeouts

    # callees first: a caller's latency includes its calls' attempts, timeouts and backoffs
    latency, error, attempts = {}, {}, {}
    for s in reversed(names):
        latency[s], error[s] = own_lat[s].copy(), own_err[s].copy()
        for c in calls.successors(s):
            e = calls.edges[s, c]
            seen = _lagged(latency[c] + client_delay[c], e["lag"])
            timed_out = 1 / (1 + np.exp(-(seen - e["timeout"]) / (0.1 * e["timeout"])))
            fail = 1 - (1 - _lagged(np.minimum(error[c] + client_loss[c], 1), e["lag"])) * (1 - timed_out)
            tries = (1 - fail ** (e["retries"] + 1)) / np.maximum(1 - fail, 1e-9)
            attempts[s, c] = tries
            per_try = (1 - timed_out) * seen + timed_out * e["timeout"]
            latency[s] = latency[s] + e["m"] * (tries * per_try + (tries - 1) * e["backoff"])
            if e["surfaces"]:  # otherwise the caller falls back quietly
                error[s] = 1 - (1 - error[s]) * (1 - fail ** (e["retries"] + 1))
    # callers first: requests arrive from outside (frontend) and from callers, retries included
    rps = {}
    for s in names:
        rps[s] = rng.uniform(20, 200) * load * (s == names[0]) + rng.uniform(1, 10) * load
        for caller in calls.predecessors(s):
            rps[s] = rps[s] + rps[caller] * calls.edges[caller, s]["m"] * attempts[caller, s]
    columns = {}
    for s in names:
        busy = cpu[s] * (rps[s] / np.median(rps[s])) ** 0.7 + steal[s]
        total = np.cumsum(rng.poisson(rps[s] * step_s))
        requests = np.maximum(rps[s] * step_s, 1)
        observed_err = rng.binomial(requests.astype(np.int64), np.clip(error[s], 0, 1)) / requests
        columns |= {f"{s}_cpu": np.clip(busy, 0, 100), f"{s}_mem": mem[s], f"{s}_latency": latency[s],
                    f"{s}_error": observed_err, f"{s}_requests_total": total.astype(float)}
    if rng.random() < 0.5:  # one service restarts: its counter starts again from zero
        s, at = names[int(rng.integers(0, n))], int(rng.integers(samples // 4, samples))
        c = columns[f"{s}_requests_total"]
        c[at:] -= c[at - 1]
    return names, calls, root, inject, columns


def rcaeval_cases(root: Path, seed: int, count: int = 5, step_s: int = 15, minutes: int = 60) -> list[Case]:
    """`count` incidents in RCAEval's RE1 layout, each on its own random system."""
    rng = np.random.default_rng(seed)
    samples = minutes * 60 // step_s
    cases = []
    for k in range(count):
        fault = FAULTS[(seed + k) % len(FAULTS)]
        names, calls, svc, inject, columns = _simulate(rng, fault, step_s, samples)
        frame = pd.DataFrame({"time": START_S + step_s * np.arange(samples), **columns})
        folder = Path(root) / "rcaeval_layout" / f"{svc}_{fault}" / f"{seed}-{k}"
        folder.mkdir(parents=True, exist_ok=True)
        frame.to_csv(folder / "data.csv", index=False)
        (folder / "inject_time.txt").write_text(str(START_S + step_s * inject))
        case = Case(f"rcaeval-s{seed}-{k}", "rcaeval_layout", folder, frame, START_S + step_s * inject, svc, fault,
                    calls.reverse(copy=True), [c for c in frame.columns if c.endswith("_total")])
        cases.append(_write_case(case, START_S + step_s * (inject + 600 // step_s)))
    return cases


def read_re1(folder: Path) -> tuple[pd.DataFrame, int]:
    """A case folder read back the RE1 way: `data.csv` and `inject_time.txt`."""
    return pd.read_csv(Path(folder) / "data.csv"), int((Path(folder) / "inject_time.txt").read_text())


# --- synth archives, as peers see them ------------------------------------------------------

def synth_metric_frame(archive_dir: Path) -> tuple[pd.DataFrame, list[str]]:
    """An ocsf_ray.synth archive's metric events as one wide frame: a `time` column (epoch
    s, the scrape tick; hosts' sub-second jitter removed) and `<service>_<metric>` columns.
    Per host, `requests_total` becomes a per-second rate (a drop is a restart from zero);
    then hosts are pooled per service: request and counter rates summed, other gauges
    averaged. Returns the frame and its (already converted) counter columns."""
    table = pq.read_table(Path(archive_dir) / "events" / "metrics").flatten()
    long = pd.DataFrame({"time": table["time"].to_numpy() // 1000, "service": table["service.name"].to_numpy(),
                         "host": table["device.hostname"].to_numpy(), "metric": table["metric.name"].to_numpy(),
                         "value": table["metric.value"].to_numpy(), "type": table["metric.type"].to_numpy()})
    step = int(long.groupby("host")["time"].apply(lambda t: np.diff(np.unique(t)).min()).min())
    long["time"] = long["time"] - long["time"] % step if step > 1 else long["time"]
    counters = long["type"] == "counter"
    if counters.any():
        c = long[counters].sort_values(["host", "metric", "time"])
        grouped = c.groupby(["host", "metric"])
        diff, dt = grouped["value"].diff(), grouped["time"].diff()
        c = c.assign(value=diff.where(diff >= 0, c["value"]) / dt).dropna(subset=["value"])
        long = pd.concat([long[~counters], c])
    summed = long["metric"].isin(["request_rate", "requests_total"])
    parts = [long[summed].pivot_table(index="time", columns=["service", "metric"], values="value", aggfunc="sum"),
             long[~summed].pivot_table(index="time", columns=["service", "metric"], values="value", aggfunc="mean")]
    wide = pd.concat(parts, axis=1).sort_index().ffill().bfill()
    wide.columns = [f"{svc}_{metric}" for svc, metric in wide.columns]
    wide = wide[sorted(wide.columns)]
    return wide.rename_axis("time").reset_index(), []


def synth_cases(archive_dir: Path, normal_s: int = 2 * 3600) -> list[Case]:
    """One peer case per incident of a synth archive: the metric frame from `normal_s`
    before the incident (or the end of the previous incident, if later) to its end, the
    incident start as inject time, and the true call graph (ground_truth/topology.json)."""
    archive_dir = Path(archive_dir)
    frame, counters = synth_metric_frame(archive_dir)
    incidents = json.loads((archive_dir / "ground_truth" / "incidents.json").read_text())
    topology = json.loads((archive_dir / "ground_truth" / "topology.json").read_text())
    graph = nx.DiGraph()
    graph.add_nodes_from(s["name"] for s in topology["services"])
    graph.add_edges_from((c["callee"], c["caller"]) for c in topology["calls"])  # cause -> effect
    cases = []
    for inc in incidents:
        start, end = inc["start"] // 1000, inc["end"] // 1000
        before = [i["end"] // 1000 for i in incidents if i["end"] // 1000 <= start]
        lo = max([start - normal_s, *before])
        part = frame[(frame["time"] >= lo) & (frame["time"] <= end)].reset_index(drop=True)
        cases.append(Case(f"{archive_dir.name}-{inc['id']}", "synth", archive_dir, part, int(start),
                          inc["root_service"], inc["type"], graph, counters))
    return cases


FAMILIES = {"pyrca": (pyrca_cases, (0, 1, 2)), "rcaeval_layout": (rcaeval_cases, (0, 1, 2, 3))}


def all_cases(root: Path, families=tuple(FAMILIES)) -> list[Case]:
    """24 PyRCA incidents (3 seeds x 8) and 20 RE1-layout incidents (4 seeds x 5)."""
    return [c for f in families for seed in FAMILIES[f][1] for c in FAMILIES[f][0](Path(root), seed)]


if __name__ == "__main__":
    for case in all_cases(Path(sys.argv[1] if len(sys.argv) > 1 else "out/rca-cases")):
        print(f"{case.name:<18} {case.fault:<12} root {case.root:<10} {case.frame.shape[1] - 1:>3} series "
              f"{case.frame.shape[0]:>4} samples  {case.folder}")
