"""Ray job: batch scoring with a bundle (`ocsf_ray.pipeline.score`) on the cluster.

    ray job submit --address http://HEAD:8265 --working-dir . -- python jobs/score.py INPUT ... --model BUNDLE --out OUT

Inputs, bundle and outputs may be cluster storage (s3://, gs://): see docs/OPERATIONS.md.
The log ends with a JSON summary line.
"""

import argparse

from ocsf_ray import checks, pipeline
from ocsf_ray.jobargs import LogProgress, run_job


def parse():
    parser = argparse.ArgumentParser(prog="jobs/score.py", description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", help="OCSF files, directories or globs to score")
    parser.add_argument("--model", required=True, help="A model bundle (from train, tune or the pipeline)")
    parser.add_argument("--out", required=True, help="Output directory: scores/, rejects/, explanations.json")
    parser.add_argument("--percentile", type=float, default=None, help="Flag events above this percentile [default: 99]")
    parser.add_argument("--contamination", type=float, default=None, help="Or: the expected share of anomalies")
    parser.add_argument("--explain-top", type=int, default=20, help="Explain this many top-scored events")
    return parser.parse_args()


def work(args) -> dict:
    checks.indexed_manifest(args.model)
    percentile = checks.flag_percentile(args.percentile, args.contamination)
    scored = pipeline.score(args.inputs, args.model, args.out, percentile, args.explain_top, LogProgress())
    return {"out": args.out, "events": scored.archive.rows_read, "scored": scored.run.scored,
            "unscored": scored.run.unscored, "elapsed_s": round(scored.elapsed_s, 1)}


if __name__ == "__main__":
    run_job(parse, work)
