"""Drift verdicts: `ocsf-ray monitor` against an uncorrected per-dimension KS rule.

One synthetic system A (`--seed`, `--services`, no incidents) over `--days` days; a small
bundle is trained and indexed on its first day, with the feature options and training
settings of tests/test_monitor.py on API logs, spans and metrics (`service_version` left out, see
docs/MONITORING.md, Known limits). Cases, each ingested and checked on its own:

- every later day of A: the same system, expected **no drift**;
- "other system": one day of another seed with more services (other hosts, services,
  call graph), expected **drift**;
- "3x traffic": one day of A's seed and services with `--traffic` times A's events per
  day (more users, denser metric samples), expected **drift**.

The changed variants are dated A's second day, outside the bundle's reference period.

Ours: `monitor_archive` on the ingested case, as `ocsf-ray monitor` runs it (default
MonitorOptions: BH-corrected per-dimension KS with a 0.1 effect floor on embeddings,
PSI / new-category rate / numeric KS on features, binomial test on the flag rate);
its verdict is `retrain_recommended`, its time ingest + monitor.

Baseline, "uncorrected per-dimension KS": the rule many drift tools default to, a
two-sample KS test per embedding dimension at p < 0.05 with no multiple-testing
correction and no effect-size floor; drift if any dimension of any family fails. It
sees exactly the embeddings ours sees: the bundle's stored reference embeddings
(`FamilyIndex.embeddings`) and the same current sample (`sample_features` with the
monitor's `max_rows` and `seed`) embedded by the bundle's model, for every family the
monitor tested. The figure is correct verdicts, ours / baseline.

    python bench/monitor.py                                   # 4 days of 12k events: ~7 min on 2 loaded cores
    python bench/monitor.py --days 3 --events-per-day 8000 --work /tmp/mon --keep
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import numpy as np

FAMILIES = ["6003_log", "6003_trace", "99_metric"]
DAY_MS = 86_400_000


def uncorrected_ks(reference: np.ndarray, current: np.ndarray, alpha: float) -> int:
    """Dimensions whose two-sample KS p-value is below `alpha` (no correction, no floor)."""
    from scipy import stats

    found = stats.ks_2samp(reference, current, axis=0, method="asymp")
    pvalue = np.nan_to_num(np.atleast_1d(found.pvalue).astype(np.float64), nan=1.0)
    return int((pvalue < alpha).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=4, help="days of system A (day 1 trains, the rest are no-drift cases)")
    parser.add_argument("--events-per-day", type=int, default=12_000)
    parser.add_argument("--services", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1, help="system A")
    parser.add_argument("--other-seed", type=int, default=7)
    parser.add_argument("--other-services", type=int, default=10)
    parser.add_argument("--traffic", type=float, default=3.0, help="events-per-day multiplier of the traffic variant")
    parser.add_argument("--alpha", type=float, default=0.05, help="the baseline's per-dimension p-value threshold")
    parser.add_argument("--work", default=None, help="working directory (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep --work afterwards")
    args = parser.parse_args()
    if args.days < 2:
        parser.error("need --days >= 2")

    from ocsf_ray.features import FeatureOptions, fit_family, save_specs, write_features
    from ocsf_ray.index import IndexOptions, index_bundle
    from ocsf_ray.index.reference import FamilyIndex
    from ocsf_ray.io import read_events
    from ocsf_ray.monitor import MonitorOptions, monitor_archive, write_report
    from ocsf_ray.monitor.current import sample_features
    from ocsf_ray.runtime import start_ray
    from ocsf_ray.synth import SynthConfig, generate_archive
    from ocsf_ray.train import TrainOptions, train_bundle
    from ocsf_ray.train.bundle import load_family

    work = args.work or tempfile.mkdtemp(prefix="ocsf-ray-bench-monitor-")
    os.makedirs(work, exist_ok=True)
    print(f"work dir {work}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    start_ray(num_cpus=4)
    started = time.perf_counter()

    # --- archives --------------------------------------------------------------------
    base = SynthConfig(out=os.path.join(work, "system-a"), events=args.events_per_day * args.days,
                       services=args.services, incidents=0, days=args.days, seed=args.seed, overwrite=True)
    generate_archive(base)
    day_two = base.start_ms + DAY_MS
    variants = {
        f"other system (seed {args.other_seed}, {args.other_services} services)": SynthConfig(
            out=os.path.join(work, "other"), events=args.events_per_day, services=args.other_services,
            incidents=0, days=1, seed=args.other_seed, start_ms=day_two, overwrite=True),
        f"{args.traffic:g}x traffic (seed {args.seed}, {args.services} services)": SynthConfig(
            out=os.path.join(work, "traffic"), events=round(args.events_per_day * args.traffic), services=args.services,
            incidents=0, days=1, seed=args.seed, start_ms=day_two, overwrite=True),
    }
    for config in variants.values():
        generate_archive(config)

    def day_glob(config: SynthConfig, day: int) -> str:
        stamp = time.strftime("%Y%m%d", time.gmtime((config.start_ms + day * DAY_MS) / 1000))
        return os.path.join(str(config.out), "events", "*", f"{stamp}*")

    cases = [(f"system A, day {d + 1}", False, day_glob(base, d)) for d in range(1, args.days)]
    cases += [(name, True, os.path.join(str(config.out), "events")) for name, config in variants.items()]
    print(f"synth: {time.perf_counter() - started:.0f} s")

    # --- the champion: day 1 of system A ------------------------------------------------
    step = time.perf_counter()
    features = os.path.join(work, "features")
    shutil.rmtree(features, ignore_errors=True)
    archive = read_events([day_glob(base, 0)], features)
    options = FeatureOptions(exclude=("service_version",))
    specs = {family: fit_family(archive, family, options) for family in FAMILIES}
    for family, spec in specs.items():
        write_features(archive, family, spec, features)
    save_specs(specs, os.path.join(features, "feature_spec.json"))
    bundle = os.path.join(work, "bundle")
    shutil.rmtree(bundle, ignore_errors=True)
    train = TrainOptions(epochs=3, batch_size=128, d_model=32, n_blocks=1, embedding_dim=16, val_batch_size=128,
                         min_rows=300, max_batches_per_epoch=20, learning_rate=3e-3)
    trained = train_bundle(features, bundle, train, workers=1)
    index_bundle(bundle, features, IndexOptions())
    print(f"bundle: {archive.accepted:,} day-1 events, families {sorted(trained.manifest.families)}, "
          f"{time.perf_counter() - step:.0f} s (ingest + features + train + index)")

    # --- the cases --------------------------------------------------------------------
    monitor_options = MonitorOptions()
    models, references = {}, {}
    rows = []
    for name, expected, source in cases:
        root = os.path.join(work, "runs", name.split(" (")[0].replace(" ", "-").replace(",", ""), "monitor")
        shutil.rmtree(root, ignore_errors=True)
        step = time.perf_counter()
        current = read_events([source], os.path.join(root, "current"))  # as `ocsf-ray monitor` does
        report = monitor_archive(bundle, current, root, monitor_options)
        wall = time.perf_counter() - step
        write_report(report, root)

        step = time.perf_counter()
        ours_dims = base_dims = total_dims = 0
        ours_embedding = False
        for family, found in report["families"].items():
            if not found["tested"]:
                continue
            if family not in models:
                models[family] = load_family(bundle, family)
                references[family] = FamilyIndex.load(bundle, family, models[family].spec).embeddings
            sample = sample_features(os.path.join(root, "current"), family, monitor_options.max_rows, monitor_options.seed)
            embedded = models[family].embed_features(sample)
            base_dims += uncorrected_ks(references[family], embedded, args.alpha)
            ours_dims += found["embedding"]["drifted_dimensions"]
            total_dims += found["embedding"]["dimensions"]
            ours_embedding |= found["embedding"]["drifted"]
        baseline_s = time.perf_counter() - step
        drifted_families = [f for f, found in report["families"].items() if found["drifted"]]
        rows.append({"case": name, "expected": expected, "ours": report["retrain_recommended"], "ours_dims": ours_dims,
                     "ours_embedding": ours_embedding, "baseline": base_dims > 0, "baseline_dims": base_dims,
                     "dims": total_dims, "events": current.accepted, "wall": wall, "baseline_s": baseline_s,
                     "families": drifted_families, "reasons": report["reasons"]})
        print(f"{name}: {current.accepted:,} events, ours {'drift' if report['retrain_recommended'] else 'no drift'} "
              f"({ours_dims}/{total_dims} dims) in {wall:.0f} s; baseline {'drift' if base_dims else 'no drift'} "
              f"({base_dims}/{total_dims} dims)", flush=True)
        for reason in report["reasons"]:
            print(f"    {reason}")

    # --- the table ----------------------------------------------------------------------
    verdict = lambda drift: "drift" if drift else "no drift"  # noqa: E731
    print(f"\n{len(rows)} cases, bundle on day 1 of system A ({args.events_per_day:,} events/day, "
          f"{args.services} services, seed {args.seed}); total {time.perf_counter() - started:.0f} s")
    header = (f"{'case':<40}{'events':>8}{'expected':>10}{'ours':>10}{'emb. dims':>11}{'ours emb.':>11}"
              f"{'baseline':>10}{'KS dims':>9}{'monitor s':>11}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['case']:<40}{r['events']:>8,}{verdict(r['expected']):>10}{verdict(r['ours']):>10}"
              f"{r['ours_dims']:>5}/{r['dims']:<5}{verdict(r['ours_embedding']):>11}{verdict(r['baseline']):>10}"
              f"{r['baseline_dims']:>4}/{r['dims']:<4}{r['wall']:>11.0f}")
    print("(ours: retrain_recommended of the whole monitor; emb. dims: embedding dimensions drifted, summed over "
          "families; ours emb.: the embedding section alone; baseline: KS p < "
          f"{args.alpha} on any dimension, no correction, no effect floor)")
    ours_right = sum(r["ours"] == r["expected"] for r in rows)
    base_right = sum(r["baseline"] == r["expected"] for r in rows)
    ours_false = sum(r["ours"] and not r["expected"] for r in rows)
    base_false = sum(r["baseline"] and not r["expected"] for r in rows)
    ours_missed = sum(r["expected"] and not r["ours"] for r in rows)
    base_missed = sum(r["expected"] and not r["baseline"] for r in rows)
    print(f"\nfalse alarms: ours {ours_false}, baseline {base_false}; missed drift: ours {ours_missed}, "
          f"baseline {base_missed}")
    print(f"correct verdicts: ours {ours_right}/{len(rows)}, uncorrected per-dimension KS {base_right}/{len(rows)} "
          f"= {ours_right / max(base_right, 1e-9):.2f}x")
    if not args.keep and not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
