"""Ray job: root-cause analysis of incident windows (`ocsf_ray.pipeline.rca`) on the cluster.

    ray job submit --address http://HEAD:8265 --working-dir . -- python jobs/rca.py INPUT ... --out OUT [FLAGS]

FLAGS are --scores, --dependencies, --incidents and the fields of RcaOptions with their
defaults (`python jobs/rca.py --help`). Inputs and outputs may be cluster storage (s3://,
gs://): see docs/OPERATIONS.md. The log ends with a JSON summary line.
"""

import argparse

from ocsf_ray import checks, pipeline
from ocsf_ray.jobargs import LogProgress, add_options, options_from, run_job
from ocsf_ray.rca import RcaOptions


def parse():
    parser = argparse.ArgumentParser(prog="jobs/rca.py", description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", help="OCSF files, directories or globs (logs, traces, metrics, config changes)")
    parser.add_argument("--out", required=True, help="Output directory (writes <out>/rca/)")
    parser.add_argument("--scores", help="Scores directory of a score or pipeline run: adds anomaly-share signals")
    parser.add_argument("--dependencies", help="YAML mapping caller: [callee, ...], when the archive has no spans")
    parser.add_argument("--incidents", help="Ground truth incidents.json to evaluate against")
    add_options(parser, RcaOptions)
    args = parser.parse_args()
    return args, options_from(RcaOptions, args)


def work(job) -> dict:
    args, options = job
    checks.check_rca_inputs(args.scores, args.dependencies, args.incidents)
    archive = pipeline.ingest(args.inputs, args.out, LogProgress())
    found = pipeline.rca(archive, args.out, args.scores, args.dependencies,
                         args.incidents or checks.found_ground_truth(args.inputs, "incidents.json"), options, LogProgress())
    return {"out": args.out, "windows": [{"id": w.id, "start": w.start, "end": w.end,
                                          "top": found.results[w.id]["method"][:3]} for w in found.windows],
            "evaluation": found.evaluation["method"] if found.evaluation else None, "notes": found.notes}


if __name__ == "__main__":
    run_job(parse, work)
