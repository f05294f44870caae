"""Ray job: a hyperparameter sweep (`ocsf_ray.pipeline.tune`) on the cluster.

    ray job submit --address http://HEAD:8265 --working-dir . -- python jobs/tune.py --config tune_configs/smoke.yaml --features DIR --out BUNDLE

Inputs and outputs may be cluster storage (s3://, gs://): see docs/OPERATIONS.md. The log
ends with a JSON summary line (the trials and the exported bundle's version).
"""

import argparse

from ocsf_ray import checks, pipeline
from ocsf_ray.jobargs import LogProgress, run_job


def parse():
    parser = argparse.ArgumentParser(prog="jobs/tune.py", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="A sweep definition, e.g. tune_configs/smoke.yaml")
    parser.add_argument("--features", required=True, help="A featurize output directory")
    parser.add_argument("--out", required=True, help="Bundle directory for the best trial")
    parser.add_argument("--family", help="Family to tune (default: the largest)")
    return parser.parse_args()


def work(args) -> dict:
    tuned = pipeline.tune(checks.load_sweep(args.config), args.features, args.out, args.family, LogProgress())
    return {"family": tuned.family, "bundle": args.out, "version": tuned.manifest.version, "trials": tuned.trials}


if __name__ == "__main__":
    run_job(parse, work)
