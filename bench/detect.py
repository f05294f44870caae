"""Anomaly detection on labelled data: ocsf-ray against simple baselines, in one run.

Data sets (generated in a temporary folder, see bench/detect_sets.py): five `ocsf-ray synth`
archives with seeds never used in development (101-105); the real seed sample with
incidents injected as copies of its own rows (a burst of a new message template, one slow
endpoint, an unusual user, an error burst; each alone and all mixed; skipped with a note
when `shared/data/seed-sample/` is absent); a syslog-like kernel/RAS log.

Methods: ocsf-ray is run as users run it, `ocsf-ray run INPUTS --out DIR --labels ...`, and
its `anomaly_score` is read from DIR/scores. The baselines of `ocsf_ray.evaluate` (HBOS, ECOD,
IsolationForest, k-NN on raw features with ocsf-ray's time exclusion, message-template
rarity, severity alone, random) rank the same events from the same feature rows
(DIR/features), each fitted and calibrated per family as ocsf-ray is.

Figures, per set and per incident kind (that kind's events against the normal ones):
* AUROC: chance that a random anomalous event outranks a random normal one (0.5 = chance);
* AUPRC: average precision over the ranking; its chance level is the anomalous share, so
  it separates methods that AUROC rates alike (the figure methods are ranked by);
* P@pos, P@100: share of anomalous events among the top k, k = the number of anomalous
  events (R-precision) and 100;
* rank: ocsf-ray's place among all methods by AUPRC, ties counted against it (1 = best);
* ratio: ocsf-ray's AUPRC over the best baseline's (above 1: ocsf-ray is better);
* throughput: events/s of a separate `ocsf-ray score --model DIR/bundle` on the set, end to
  end (Ray start-up, ingestion, featurization and scoring), once per group of sets, since
  `ocsf-ray run` does not time its score step.
Groups (synth, seed-sample) are also summarised by each method's mean over their sets.

Beside the methods, not ranked with them since it reads the labels: a supervised ceiling,
gradient boosting (scikit-learn's HistGradientBoostingClassifier) per family on the same
feature rows, scored out of fold over 5 folds: random folds (the incident's other events
are in training: an upper bound on what the rows carry) and 5 contiguous time blocks (the
incident is unseen). Where it stays low, no per-event detector on these rows can do well.
Prints a table per set and a final JSON line with every figure.

    .venv/bin/python bench/detect.py            # 11 `ocsf-ray run`s: 5 synth, 5 seed-sample, 1 RAS
    .venv/bin/python bench/detect.py --quick    # smoke run: 3 small ones (21 min on 2 cores at load ~40)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from detect_sets import SEED_KINDS, SEED_SAMPLE, DataSet, ocsf_ray, ras_set, seed_sample_sets, synth_sets  # noqa: E402

from ocsf_ray.evaluate import evaluate_run  # noqa: E402

METHOD = "ocsf-ray"
COLUMNS = ("auroc", "auprc", "p@pos", "p@100")
SHORT = {"isolation_forest": "iforest", "template_rarity": "template"}  # per-kind table headers


def figures(metrics: dict) -> dict:
    """The four ranking figures of one method (see the module docstring)."""
    return {"auroc": metrics.get("auroc"), "auprc": metrics.get("auprc"),
            "p@pos": metrics.get("precision_at_positives"), "p@100": (metrics.get("precision_at_k") or {}).get("100")}


def standing(methods: dict[str, dict]) -> dict:
    """ocsf-ray's rank by AUPRC among all methods (ties count against it), the best
    baseline, and the ratio of ocsf-ray's AUPRC to that baseline's."""
    ours = methods[METHOD]["auprc"]
    others = {name: m["auprc"] for name, m in methods.items() if name != METHOD and m["auprc"] is not None}
    if ours is None or not others:
        return {"rank": None, "of": len(methods), "best_baseline": None, "ratio": None}
    best = max(others, key=others.get)
    return {"rank": 1 + sum(v >= ours for v in others.values()), "of": len(others) + 1, "best_baseline": best,
            "ratio": ours / others[best] if others[best] else None}


def set_figures(result: dict) -> dict:
    """Per method and per incident kind figures of an `evaluate_run` result, with ocsf-ray's
    standing overall and in each kind."""
    every = {METHOD: result["method"], **result["baselines"]}
    methods = {name: figures(m) for name, m in every.items()}
    kinds = {}
    for kind, found in result["method"]["per_incident_type"].items():
        by_method = {name: figures(m["per_incident_type"].get(kind, {})) for name, m in every.items()}
        kinds[kind] = {"events": found["events"], "methods": by_method, **standing(by_method)}
    return {"events": result["events"], "positives": result["positives"], "methods": methods,
            **standing(methods), "per_kind": kinds, "notes": result["notes"]}


def supervised_ceiling(features_root: str, labels_path: str, seed: int) -> dict:
    """AUROC and AUPRC over all events of out-of-fold predicted probabilities, per family
    fitted on the labels (module docstring): `random` folds and `time` blocks."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import average_precision_score, roc_auc_score

    from ocsf_ray.train.data import discover_features

    labels = pl.read_parquet(labels_path, columns=["metadata_uid", "is_anomaly"]).unique("metadata_uid")
    found = {"random": ([], []), "time": ([], [])}
    for family in discover_features(features_root).values():
        rows = (pl.read_parquet(list(family.files)).join(labels, on="metadata_uid", how="left")
                .with_columns(pl.col("is_anomaly").fill_null(False)).sort("time"))
        categorical, numeric = family.columns
        x, y = rows.select(categorical + numeric).to_numpy().astype(np.float64), rows.get_column("is_anomaly").to_numpy()
        folds = {"random": np.array_split(np.random.default_rng(seed).permutation(len(y)), 5),
                 "time": np.array_split(np.arange(len(y)), 5)}
        for kind, blocks in folds.items():
            predicted = np.zeros(len(y))
            for block in blocks:
                train = np.setdiff1d(np.arange(len(y)), block)
                if 0 < y[train].sum() < len(train):
                    model = HistGradientBoostingClassifier(categorical_features=[False] * len(categorical + numeric),
                                                           random_state=seed).fit(x[train], y[train])
                    predicted[block] = model.predict_proba(x[block])[:, 1]
                else:
                    predicted[block] = y[train].mean() if len(train) else 0.0
            found[kind][0].append(y)
            found[kind][1].append(predicted)
    result = {}
    for kind, (ys, ps) in found.items():
        y, p = np.concatenate(ys), np.concatenate(ps)
        result[kind] = {"auroc": float(roc_auc_score(y, p)), "auprc": float(average_precision_score(y, p))}
    return result


def run_set(data: DataSet, work: Path, args: argparse.Namespace, throughput: bool) -> dict:
    """ocsf-ray run on the set, every method's figures from its scores and features, and
    optionally the score command's throughput."""
    out = work / f"out-{data.name}"
    seconds = ocsf_ray(["run", *data.inputs, "--out", str(out), "--labels", data.labels, "--explain-top", "0",
                        "--epochs", str(args.epochs), "--num-cpus", str(args.num_cpus)], work / f"run-{data.name}.log")
    started = time.perf_counter()
    result = evaluate_run(str(out / "scores"), data.labels, features_root=str(out), ks=(100,), seed=args.seed)
    found = set_figures(result) | {"run_seconds": round(seconds, 1),
                                   "evaluate_seconds": round(time.perf_counter() - started, 1),
                                   "supervised_ceiling": supervised_ceiling(str(out), data.labels, args.seed)}
    if throughput:
        score_seconds = ocsf_ray(["score", *data.inputs, "--model", str(out / "bundle"), "--out",
                                  str(work / f"score-{data.name}"), "--explain-top", "0", "--num-cpus", str(args.num_cpus)],
                                 work / f"score-{data.name}.log")
        found["score_events_per_s"] = round(data.events / score_seconds, 1)
    return found


def _cell(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_set(name: str, found: dict) -> None:
    """The set's method table (ocsf-ray first, then baselines by AUPRC) and, per incident
    kind, every method's AUPRC with ocsf-ray's rank."""
    print(f"\n== {name}: {found['events']:,} events, {found['positives']:,} anomalous; "
          f"ocsf-ray rank {found['rank']}/{found['of']} by AUPRC, vs best baseline "
          f"({found['best_baseline']}) {_cell(found['ratio'])}x; run {found['run_seconds']:.0f} s"
          + (f"; score {found['score_events_per_s']:,.0f} events/s" if "score_events_per_s" in found else ""))
    order = sorted(found["methods"], key=lambda m: (m != METHOD, -(found["methods"][m]["auprc"] or 0)))
    print(f"{'method':18}" + "".join(f"{c:>8}" for c in COLUMNS))
    for method in order:
        print(f"{method:18}" + "".join(f"{_cell(found['methods'][method][c]):>8}" for c in COLUMNS))
    if found["per_kind"]:
        print(f"{'AUPRC per kind':24}{'events':>7}{'rank':>6}" + "".join(f"{SHORT.get(m, m):>10}" for m in order))
        for kind, k in sorted(found["per_kind"].items()):
            cells = "".join(f"{_cell(k['methods'][m]['auprc']):>10}" for m in order)
            print(f"{kind[:24]:24}{k['events']:>7}{str(k['rank']):>6}{cells}")
    ceiling = found["supervised_ceiling"]
    print("supervised ceiling (labels read; not ranked): " + ", ".join(
        f"{kind} folds AUROC {_cell(c['auroc'])} AUPRC {_cell(c['auprc'])}" for kind, c in ceiling.items()))
    for note in found["notes"]:
        print(f"note: {note}")


def group_summary(sets: dict[str, dict]) -> dict:
    """Each method's mean figures over the sets of a group (sets where a figure is undefined
    are left out of its mean), and ocsf-ray's standing on those means, overall and per
    incident kind."""
    def mean_figures(tables: list[dict[str, dict]]) -> dict[str, dict]:
        names = {name for table in tables for name in table}
        return {name: {c: _mean([t[name][c] for t in tables if name in t]) for c in COLUMNS} for name in names}

    methods = mean_figures([s["methods"] for s in sets.values()])
    kinds = {}
    for kind in sorted({k for s in sets.values() for k in s["per_kind"]}):
        by_method = mean_figures([s["per_kind"][kind]["methods"] for s in sets.values() if kind in s["per_kind"]])
        kinds[kind] = {"sets": sum(kind in s["per_kind"] for s in sets.values()), "methods": by_method, **standing(by_method)}
    return {"sets": sorted(sets), "methods": methods, **standing(methods), "per_kind": kinds}


def _mean(values: list) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def print_group(group: str, summary: dict) -> None:
    print(f"\n== {group} (mean over {len(summary['sets'])} sets): ocsf-ray rank {summary['rank']}/{summary['of']}, "
          f"vs best baseline ({summary['best_baseline']}) {_cell(summary['ratio'])}x")
    for kind, k in summary["per_kind"].items():
        print(f"  {kind:32} ocsf-ray AUPRC {_cell(k['methods'][METHOD]['auprc'])}  rank {k['rank']}/{k['of']}  "
              f"best baseline {k['best_baseline']} {_cell(k['methods'].get(k['best_baseline'], {}).get('auprc'))}")


def build_sets(root: Path, args: argparse.Namespace, skipped: list[str]) -> list[DataSet]:
    """The data sets the flags ask for, written under `root`."""
    sets = []
    if "synth" in args.sets:
        sets += synth_sets(root, args.synth_seeds, args.synth_events, args.synth_days, args.num_cpus)
    if "seed-sample" in args.sets:
        if SEED_SAMPLE.is_dir():
            sets += seed_sample_sets(root, args.seed_kinds, args.seed_rate, args.seed_minutes, args.seed, not args.quick)
        else:
            skipped.append(f"seed-sample: {SEED_SAMPLE} is absent")
    if "ras" in args.sets:
        sets.append(ras_set(root, args.ras_lines, args.ras_hours, args.seed))
    return sets


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: one small synth archive, 40 minutes of the seed sample with the kinds mixed only, "
                             "a small RAS log, 1 epoch")
    parser.add_argument("--sets", default="synth,seed-sample,ras", help="comma-separated: synth, seed-sample, ras")
    parser.add_argument("--synth-seeds", default="101,102,103,104,105")
    parser.add_argument("--synth-events", type=int, default=20_000)
    parser.add_argument("--synth-days", type=float, default=0.5, help="12 hours: the index's 60-minute time exclusion applies")
    parser.add_argument("--seed-kinds", default=",".join(SEED_KINDS), help="injected kinds; each alone, and all mixed")
    parser.add_argument("--seed-rate", type=float, default=0.01,
                        help="injected share of events per kind alone (mixed: half each)")
    parser.add_argument("--seed-minutes", type=float, default=120, help="leading minutes of the seed sample used")
    parser.add_argument("--ras-lines", type=int, default=5000)
    parser.add_argument("--ras-hours", type=float, default=12)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--num-cpus", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0, help="seed of injection, the RAS log and tie-breaking")
    parser.add_argument("--no-throughput", action="store_true", help="skip the timed `ocsf-ray score` calls")
    parser.add_argument("--keep", help="write everything under this folder (kept) instead of a temporary one")
    args = parser.parse_args()
    if args.quick:
        args.synth_seeds, args.synth_events, args.seed_minutes, args.ras_lines, args.epochs = "101", 5000, 40, 2000, 1
    args.sets = args.sets.split(",")
    args.synth_seeds = [int(s) for s in args.synth_seeds.split(",")]
    args.seed_kinds = args.seed_kinds.split(",")
    return args


def main() -> int:
    args = parse_args()
    started = time.perf_counter()
    skipped: list[str] = []
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="detect-") as temporary:
        root = Path(args.keep or temporary)
        root.mkdir(parents=True, exist_ok=True)
        sets = build_sets(root, args, skipped)
        timed_groups: set[str] = set()
        for data in sets:
            try:
                results[data.name] = found = run_set(data, root, args, not args.no_throughput and data.group not in timed_groups)
            except Exception as error:  # noqa: BLE001 - a failed set is reported; the others still run
                skipped.append(f"{data.name}: {type(error).__name__}: {error}")
                print(f"\n== {data.name}: FAILED\n{error}", file=sys.stderr)
                continue
            found["group"] = data.group
            timed_groups.add(data.group)
            print_set(data.name, found)
    groups = {}
    for group in sorted({r["group"] for r in results.values()}):
        members = {name: r for name, r in results.items() if r["group"] == group}
        if len(members) > 1:
            groups[group] = group_summary(members)
            print_group(group, groups[group])
    for note in skipped:
        print(f"skipped: {note.splitlines()[0]}")
    print(json.dumps({"bench": "detect", "quick": args.quick, "epochs": args.epochs, "sets": results, "groups": groups,
                      "skipped": skipped, "seconds": round(time.perf_counter() - started, 1)}, default=float))
    return 1 if not results else 0


if __name__ == "__main__":
    sys.exit(main())
