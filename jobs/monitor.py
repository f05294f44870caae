"""Ray job: drift monitoring, and retraining with --retrain (`ocsf_ray.pipeline.monitor`), on the cluster.

    ray job submit --address http://HEAD:8265 --working-dir . -- python jobs/monitor.py --model BUNDLE --current INPUT [FLAGS]

FLAGS are --out, --retrain, --epochs, --max-batches-per-epoch and the fields of
MonitorOptions with their defaults (`python jobs/monitor.py --help`). Exit status 3 when
retraining is recommended, as `ocsf-ray monitor` (docs/MONITORING.md). Inputs and outputs
may be cluster storage (s3://, gs://): see docs/OPERATIONS.md. The log ends with the report
as a JSON line.
"""

import argparse
import dataclasses
import sys

from ocsf_ray import checks, pipeline
from ocsf_ray.jobargs import LogProgress, add_options, options_from, run_job
from ocsf_ray.monitor import EXIT_NO_DRIFT, EXIT_RETRAIN, MonitorOptions, champion_train_options


def parse():
    parser = argparse.ArgumentParser(prog="jobs/monitor.py", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="The bundle in use (the champion)")
    parser.add_argument("--current", action="append", required=True, help="Current OCSF files, directories or globs (repeatable)")
    parser.add_argument("--out", default=".", help="Directory or URI for monitor/")
    parser.add_argument("--retrain", action="store_true", help="Train a challenger; keep the better bundle")
    parser.add_argument("--epochs", type=int, help="Challenger epochs [default: the champion's]")
    parser.add_argument("--max-batches-per-epoch", type=int, help="Challenger batches per epoch [default: the champion's]")
    add_options(parser, MonitorOptions)
    args = parser.parse_args()
    return args, options_from(MonitorOptions, args)


def work(job) -> dict:
    args, options = job
    manifest = checks.indexed_manifest(args.model)
    changed = {k: v for k, v in (("epochs", args.epochs), ("max_batches_per_epoch", args.max_batches_per_epoch)) if v is not None}
    settings = dataclasses.replace(champion_train_options(manifest), **changed)
    found = pipeline.monitor(args.model, args.current, args.out, options, args.retrain, settings,
                             manifest.workers, LogProgress())
    return found.report


if __name__ == "__main__":
    sys.exit(EXIT_RETRAIN if run_job(parse, work)["retrain_recommended"] else EXIT_NO_DRIFT)
