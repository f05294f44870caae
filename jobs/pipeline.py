"""Ray job: the main job (`ocsf_ray.pipeline.run_pipeline`: featurize, train, index, score,
explain, evaluate, RCA, report) on the cluster.

    ray job submit --address http://HEAD:8265 --working-dir . -- python jobs/pipeline.py [INPUT ...] --out OUT [FLAGS]

No INPUT: a generated demo archive of --demo-events events. FLAGS are the fields of
PipelineOptions, TrainOptions, IndexOptions, FeatureOptions and RcaOptions, with their
defaults (`python jobs/pipeline.py --help`). Inputs and outputs may be cluster storage
(s3://, gs://): see docs/OPERATIONS.md. The log ends with a JSON summary line.
"""

import argparse

from ocsf_ray.features import FeatureOptions
from ocsf_ray.index import IndexOptions
from ocsf_ray.jobargs import LogProgress, add_options, options_from, run_job
from ocsf_ray.pipeline import PipelineOptions, run_pipeline
from ocsf_ray.rca import RcaOptions
from ocsf_ray.train import TrainOptions


def parse():
    parser = argparse.ArgumentParser(prog="jobs/pipeline.py", description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="*", help="OCSF files, directories or globs; none = a demo archive")
    parser.add_argument("--out", required=True, help="Output directory (local or URI)")
    add_options(parser, PipelineOptions)
    add_options(parser, TrainOptions, skip=("seed",))
    add_options(parser, IndexOptions, skip=("seed",))
    add_options(parser, FeatureOptions)
    add_options(parser, RcaOptions)
    args = parser.parse_args()
    nested = {"train": options_from(TrainOptions, args, PipelineOptions().train), "index": options_from(IndexOptions, args),
              "features": options_from(FeatureOptions, args), "rca": options_from(RcaOptions, args)}
    return args.inputs, args.out, options_from(PipelineOptions, args, **nested)


def work(job) -> dict:
    inputs, out, options = job
    result = run_pipeline(inputs, out, options, LogProgress())
    return {"out": out, "events": result.featurized.archive.rows_read, "accepted": result.featurized.archive.accepted,
            "families": sorted(result.trained.manifest.families), "bundle": result.trained.bundle,
            "auroc": result.evaluation["method"]["auroc"] if result.evaluation else None,
            "rca_windows": len(result.rca.windows) if result.rca else None, "report": result.report,
            "elapsed_s": round(result.elapsed_s, 1)}


if __name__ == "__main__":
    run_job(parse, work)
