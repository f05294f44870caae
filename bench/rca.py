"""Root-cause ranking: ocsf-ray against peers' own code, on the same incidents, per case family.

Case families (bench/rca_cases.py makes the cases; one incident and one true root each,
except synth):

- `synth`: held-out seeds of ocsf_ray.synth (`--synth-seeds`, never used in development),
  one archive of 7 incidents per seed, every event source; ocsf-ray gets the archive
  (it finds dependencies from the traces). Peers get, per incident, the archive's
  metric events as a wide frame (bench/rca_cases.py `synth_metric_frame`: service x
  metric columns, `requests_total` as a rate, hosts pooled) from 2 h before the incident
  (or the previous incident's end) to its end, the incident start as inject time.
- `pyrca+graph` / `pyrca`: Salesforce PyRCA's simulator (`pyrca.simulation.data_gen`)
  converted to OCSF metric events, the same cases twice: ocsf-ray with the true graph
  (`dependencies_path`) and without any. Graph-needing peers (PyRCA HT, random walk)
  get the true graph in `pyrca+graph` and, in `pyrca`, the graph PyRCA's own PC learns
  from the case frame (bench/rca_peers.py `learned_graph`).
- `rcaeval_layout+graph` / `rcaeval_layout`: RCAEval RE1-layout cases (`data.csv` +
  `inject_time.txt`) from the simulator in bench/rca_cases.py (its rules are in that
  docstring), the same cases twice: ocsf-ray with the true call graph and without any.
  HT and random walk get the true graph in both and on synth (PC takes 20-90 s per
  layout case and returns a cyclic partial DAG there), so in `rcaeval_layout` they know
  more than ocsf-ray does: the table marks them "(true graph)".

Rankings, AC@1 / AC@3 / Avg@5 per family (RCAEval's metrics, ocsf_ray.rca.accuracy.hits):
- ocsf-ray: `read_events` + `run_rca(..., incidents=...)`, its `evaluation` (the
  incident's best-overlapping window; no window = a miss), plus the baselines ocsf-ray
  ranks on the same windows' signals (ocsf_ray.rca.accuracy.METHODS: its internal
  robust-deviation baseline, earliest onset, random);
- peers (bench/rca_peers.py, installed by `bash bench/peers_env.sh`): RCAEval BARO,
  N-Sigma, CIRCA (RCD does not install: see bench/peers_env.sh), PyRCA HT,
  epsilon-diagnosis, random walk, on the case frame with the true inject time. A peer
  that fails or ranks nothing counts as a miss and as a failure.
Windows: found = share of incidents some window covers; precision = 1 - windows
covering no incident / windows; separation (synth) = share of covered incidents whose
window covers no other incident >= 5 min away from it.
The last line printed is one JSON object with everything.

    bash bench/peers_env.sh                  # once: peers into .bench-peers/
    python bench/rca.py                      # default: 12 cases per simulator, synth seeds 11 12 (about 17 min, 2 cores)
    python bench/rca.py --cases-per-family 2 --synth-seeds 11 --synth-events 50000   # smoke test
    python bench/rca.py --families pyrca+graph pyrca --cases-per-family 20
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rca_cases import counters_as_rates, pyrca_cases, rcaeval_cases, synth_cases  # noqa: E402
from rca_peers import DEFAULT_PEERS, METADATA, PEERS_BY_NAME, learned_graph, rank_all  # noqa: E402

FAMILIES = ("synth", "pyrca+graph", "pyrca", "rcaeval_layout+graph", "rcaeval_layout")
OURS = "ocsf-ray"
GRAPH_PEERS = tuple(p for p in DEFAULT_PEERS if METADATA[p]["graph"])
SEPARATE_MS = 5 * 60_000


class Family:
    """Tallies of one case family."""

    def __init__(self, name: str, methods: list[str]):
        self.name = name
        self.hits = {m: [] for m in methods}  # method -> [AC@1..AC@5 per incident]
        self.failures = {m: 0 for m in methods}
        self.reasons: dict[str, list[str]] = {}
        self.incidents = self.found = self.windows = self.empty_windows = 0
        self.separated = [0, 0]  # separated, covered (synth only)
        self.crashes: list[dict] = []
        self.seconds = 0.0

    def add(self, method: str, hit: np.ndarray | None, reason: str | None = None) -> None:
        if hit is None:
            self.failures[method] += 1
            self.reasons.setdefault(method, []).append(reason or "no ranking")
            hit = np.zeros(5)
        self.hits[method].append(np.asarray(hit, float))

    def summary(self, peers: list[str]) -> dict:
        rows = {}
        for m, found in self.hits.items():
            mean = np.mean(found, axis=0) if found else np.zeros(5)
            rows[m] = {"ac@1": round(float(mean[0]), 4), "ac@3": round(float(mean[2]), 4),
                       "avg@5": round(float(mean.mean()), 4), "incidents": len(found), "failures": self.failures[m]}
        best = max(peers, key=lambda p: rows[p]["ac@1"], default=None)
        return {
            "methods": rows,
            "best_peer": best,
            "ac@1_vs_best_peer": (round(rows[OURS]["ac@1"] / rows[best]["ac@1"], 3)
                                  if best and rows[best]["ac@1"] > 0 else None),
            "incidents": self.incidents,
            "windows_found_per_incident": round(self.found / max(self.incidents, 1), 4),
            "windows": self.windows,
            "window_precision": round(1 - self.empty_windows / self.windows, 4) if self.windows else None,
            "separation": round(self.separated[0] / self.separated[1], 4) if self.separated[1] else None,
            "ocsf_ray_crashes": len(self.crashes),
            "peer_failure_reasons": {m: sorted(set(r))[:3] for m, r in self.reasons.items() if m != OURS},
            "seconds": round(self.seconds, 1),
        }


def run_ocsf_ray(events_dir: Path, out: Path, incidents: list[dict], dependencies: Path | None):
    """(evaluation, None) or (None, traceback tail); never raises."""
    from ocsf_ray.io import read_events
    from ocsf_ray.rca import run_rca
    try:
        archive = read_events([str(events_dir)], str(out))
        run = run_rca(archive, str(out), dependencies_path=str(dependencies) if dependencies else None,
                      incidents=incidents)
        return run.evaluation, None
    except Exception:  # noqa: BLE001  a crash is a result: every incident of the run is a miss
        return None, "".join(traceback.format_exc().splitlines(keepends=True)[-8:])


def score_ocsf_ray(family: Family, evaluation: dict | None, error: str | None, incidents: list[dict],
                   case: str, separation: bool = False) -> list[float]:
    """Adds one run's rows to `family`; returns ocsf-ray's AC@1 per incident."""
    from ocsf_ray.rca.accuracy import METHODS
    family.incidents += len(incidents)
    if evaluation is None:
        family.crashes.append({"case": case, "traceback": error})
        for _ in incidents:
            for m in METHODS:
                family.add(OURS if m == METHODS[0] else m, None, "ocsf-ray crashed")
        return [0.0] * len(incidents)
    family.windows += evaluation["windows"]
    family.empty_windows += evaluation["windows_without_incident"]
    rows = evaluation["incidents"]
    family.found += sum(1 for r in rows if r["window"] is not None)
    for r in rows:
        for m in METHODS:
            family.add(OURS if m == METHODS[0] else m, r[m]["ac@k"])
    if separation:
        span = {i["id"]: (i["start"], i["end"]) for i in incidents}
        for r in rows:
            if r["window"] is None:
                continue
            a = span[r["id"]]
            shared = [o for o in rows if o["id"] != r["id"] and o["window"] == r["window"]
                      and max(span[o["id"]][0] - a[1], a[0] - span[o["id"]][1]) >= SEPARATE_MS]
            family.separated[0] += not shared
            family.separated[1] += 1
    return [r[METHODS[0]]["ac@k"][0] for r in rows]


def score_peers(family: Family, case, ranked: dict[str, dict]) -> dict[str, float]:
    from ocsf_ray.rca.accuracy import hits
    out = {}
    for peer, got in ranked.items():
        hit = hits(got["services"], case.root) if got["services"] else None
        family.add(peer, hit, got["reason"])
        out[peer] = None if hit is None else float(hit[0])
    return out


def peer_rankings(case, peers: list[str], graph) -> dict[str, dict]:
    """Peers on the case frame, counters as rates, columns named `<service>_<metric>` with
    no `_` inside the metric (RCAEval's CIRCA splits column names on every `_`)."""
    frame = counters_as_rates(case.frame, case.counters) if case.counters else case.frame
    frame = frame.rename(columns=lambda c: c if c == "time" else "_".join(
        (c.split("_", 1)[0], c.split("_", 1)[1].replace("_", "-"))))
    return rank_all(frame, case.inject_time, graph, peers=tuple(peers))


def short(x: float | None) -> str:
    return "fail" if x is None else f"{x:.2g}"


def print_family(name: str, s: dict, peers: list[str], internal: list[str], notes: dict[str, str]) -> None:
    print(f"\n== {name}: {s['incidents']} incidents, {s['seconds']:.0f} s ==")
    print(f"{'ranking':<40}{'AC@1':>7}{'AC@3':>7}{'Avg@5':>7}{'fail':>6}")
    for m in [OURS, *peers, *internal]:
        r = s["methods"][m]
        print(f"{m + notes.get(m, ''):<40}{r['ac@1']:>7.3f}{r['ac@3']:>7.3f}{r['avg@5']:>7.3f}{r['failures']:>6}")
    ratio = s["ac@1_vs_best_peer"]
    print(f"windows found per incident {s['windows_found_per_incident']:.2f}, windows {s['windows']}, "
          f"window precision {s['window_precision'] if s['window_precision'] is not None else 'n/a'}, "
          f"separation (>= 5 min apart) {s['separation'] if s['separation'] is not None else 'n/a'}")
    print(f"ocsf-ray AC@1 / best peer ({s['best_peer']}) = {ratio if ratio is not None else 'n/a'}"
          + (f"; ocsf-ray crashed on {s['ocsf_ray_crashes']} run(s)" if s["ocsf_ray_crashes"] else ""))
    for peer, reasons in s["peer_failure_reasons"].items():
        print(f"  {peer} failures, e.g.: {' | '.join(r[:100] for r in reasons)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", nargs="+", choices=FAMILIES, default=list(FAMILIES))
    parser.add_argument("--cases-per-family", type=int, default=12, help="cases per simulator (pyrca, rcaeval_layout)")
    parser.add_argument("--case-seed", type=int, default=101, help="seed of the pyrca and rcaeval_layout cases")
    parser.add_argument("--synth-seeds", type=int, nargs="+", default=[11, 12])
    parser.add_argument("--synth-events", type=int, default=100_000)
    parser.add_argument("--synth-days", type=float, default=0.5)
    parser.add_argument("--peers", nargs="*", default=list(DEFAULT_PEERS), choices=list(PEERS_BY_NAME))
    parser.add_argument("--work", help="where cases and outputs go (default: a temporary folder, removed)")
    args = parser.parse_args()
    # the peers and PyRCA's simulator live beside our environment (idempotent: a no-op once done)
    subprocess.run(["bash", str(Path(__file__).with_name("peers_env.sh"))], check=True)

    from ocsf_ray.rca.accuracy import METHODS
    from ocsf_ray.runtime import start_ray
    from ocsf_ray.synth import SynthConfig, generate_archive

    started = time.perf_counter()
    tmp = None if args.work else tempfile.TemporaryDirectory()
    work = Path(args.work or tmp.name)
    peers = list(args.peers)
    internal = list(METHODS[1:])
    notes = {m: " (ocsf-ray's robust baseline)" for m in internal if m not in ("earliest_onset", "random")}
    notes |= {m: " (ocsf-ray's)" for m in internal if m in ("earliest_onset", "random")}
    not_run = {p: "needs RCD's patched causal-learn (bench/peers_env.sh)" for p in PEERS_BY_NAME
               if p not in DEFAULT_PEERS}
    start_ray(num_cpus=4)
    families = {f: Family(f, [OURS, *peers, *internal]) for f in args.families}
    graph_notes = {f: dict(notes) for f in families}
    for f in families:
        for p in set(peers) & set(GRAPH_PEERS):
            graph_notes[f][p] = {"pyrca+graph": " (true graph)", "pyrca": " (PC graph)"}.get(f, " (true graph)")

    def progress(family: Family, i: int, n: int, label: str, seconds: float, ours: list[float], theirs: dict):
        family.seconds += seconds
        print(f"[{family.name} {i}/{n}] {label}: ocsf-ray {seconds:.0f} s AC@1 {' '.join(short(x) for x in ours)}"
              + (" | " + " ".join(f"{p} {short(v)}" for p, v in theirs.items()) if theirs else ""), flush=True)

    if "synth" in families:
        fam = families["synth"]
        for i, seed in enumerate(args.synth_seeds, 1):
            folder = work / "synth" / f"s{seed}"
            generate_archive(SynthConfig(out=folder, events=args.synth_events, incidents=7,
                                         days=args.synth_days, seed=seed, overwrite=True))
            incidents = json.loads((folder / "ground_truth" / "incidents.json").read_text())
            t = time.perf_counter()
            evaluation, error = run_ocsf_ray(folder / "events", work / "out" / f"synth-s{seed}", incidents, None)
            ours = score_ocsf_ray(fam, evaluation, error, incidents, f"synth-s{seed}", separation=True)
            seconds = time.perf_counter() - t
            theirs: dict[str, list] = {}
            for case in synth_cases(folder) if peers else []:
                for p, v in score_peers(fam, case, peer_rankings(case, peers, case.graph)).items():
                    theirs.setdefault(p, []).append(v)
            progress(fam, i, len(args.synth_seeds), f"seed {seed}", seconds, ours,
                     {p: float(np.mean([x or 0 for x in v])) for p, v in theirs.items()})
            if error:
                print(error, flush=True)

    for base, make in (("pyrca", pyrca_cases), ("rcaeval_layout", rcaeval_cases)):
        variants = [name for name in (f"{base}+graph", base) if name in families]
        if not variants:
            continue
        cases = make(work / "cases", args.case_seed, count=args.cases_per_family)
        for i, case in enumerate(cases, 1):
            ranked_true = peer_rankings(case, peers, case.graph) if peers else {}
            for name in variants:
                fam = families[name]
                graph = name.endswith("+graph")
                t = time.perf_counter()
                evaluation, error = run_ocsf_ray(case.events_dir, work / "out" / f"{case.name}-{name}",
                                                 case.incidents(), case.dependencies_path if graph else None)
                seconds = time.perf_counter() - t
                ours = score_ocsf_ray(fam, evaluation, error, case.incidents(), f"{case.name} ({name})")
                ranked = dict(ranked_true)
                if name == "pyrca" and set(peers) & set(GRAPH_PEERS):
                    learned, why = learned_graph(case.frame)
                    for p in set(peers) & set(GRAPH_PEERS):
                        ranked[p] = (peer_rankings(case, [p], learned)[p] if learned is not None
                                     else {"services": None, "reason": f"PC: {why}", "seconds": 0})
                theirs = score_peers(fam, case, ranked)
                progress(fam, i, len(cases), f"{case.name} {case.fault} root {case.root}", seconds, ours, theirs)
                if error:
                    print(error, flush=True)

    summaries = {name: fam.summary(peers) for name, fam in families.items()}
    for name, s in summaries.items():
        print_family(name, s, peers, internal, graph_notes[name])
    if not_run:
        print("\nnot run: " + "; ".join(f"{p}: {why}" for p, why in not_run.items()))
    crashes = [c for fam in families.values() for c in fam.crashes]
    for c in crashes:
        print(f"\nocsf-ray crashed on {c['case']}:\n{c['traceback']}")
    wall = time.perf_counter() - started
    print(f"\nwall time {wall:.0f} s")
    print(json.dumps({
        "bench": "rca",
        "families": summaries,
        "peers": {p: METADATA[p]["source"] for p in peers},
        "graph_given_to": {f: {p: graph_notes[f].get(p, "").strip(" ()") for p in GRAPH_PEERS if p in peers}
                           for f in families},
        "not_run": not_run,
        "ocsf_ray_crashes": crashes,
        "settings": {k: v for k, v in vars(args).items() if k != "work"},
        "wall_s": round(wall, 1),
    }))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    main()
