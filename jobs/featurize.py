"""Ray job: ingestion and feature extraction (`ocsf_ray.pipeline.featurize`) on the cluster.

    ray job submit --address http://HEAD:8265 --working-dir . -- python jobs/featurize.py INPUT ... --out OUT [FLAGS]

FLAGS are the fields of FeatureOptions with their defaults (`python jobs/featurize.py --help`).
Inputs and outputs may be cluster storage (s3://, gs://): see docs/OPERATIONS.md. The log ends
with a JSON summary line.
"""

import argparse

from ocsf_ray import pipeline
from ocsf_ray.features import FeatureOptions
from ocsf_ray.jobargs import LogProgress, add_options, options_from, run_job


def parse():
    parser = argparse.ArgumentParser(prog="jobs/featurize.py", description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", help="OCSF files, directories or globs")
    parser.add_argument("--out", required=True, help="Output directory (local or URI)")
    add_options(parser, FeatureOptions)
    args = parser.parse_args()
    return args.inputs, args.out, options_from(FeatureOptions, args)


def work(job) -> dict:
    inputs, out, options = job
    done = pipeline.featurize(inputs, out, options, LogProgress())
    return {"out": out, "events": done.archive.rows_read, "accepted": done.archive.accepted,
            "rejected": done.archive.rejected, "rows": done.features.rows, "elapsed_s": round(done.elapsed_s, 1)}


if __name__ == "__main__":
    run_job(parse, work)
