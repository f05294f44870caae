"""Ray job: contrastive pretraining and indexing of a bundle (`ocsf_ray.pipeline.train`) on the cluster.

    ray job submit --address http://HEAD:8265 --working-dir . -- python jobs/train.py --features DIR --out BUNDLE [FLAGS]

FLAGS are the fields of TrainOptions and IndexOptions with their defaults, and --workers,
--gpu/--no-gpu, --resume, --family (`python jobs/train.py --help`). Inputs and outputs may be
cluster storage (s3://, gs://): see docs/OPERATIONS.md. The log ends with a JSON summary line.
"""

import argparse

from ocsf_ray import pipeline
from ocsf_ray.index import IndexOptions
from ocsf_ray.jobargs import LogProgress, add_options, options_from, run_job
from ocsf_ray.train import TrainOptions


def parse():
    parser = argparse.ArgumentParser(prog="jobs/train.py", description=__doc__.splitlines()[0])
    parser.add_argument("--features", required=True, help="A featurize output directory")
    parser.add_argument("--out", required=True, help="Model bundle directory to write")
    parser.add_argument("--workers", type=int, default=2, help="Ray Train workers (DDP)")
    parser.add_argument("--gpu", action=argparse.BooleanOptionalAction, default=None,
                        help="default: use GPUs when the cluster has them")
    parser.add_argument("--resume", action="store_true", help="Continue the runs in OUT/_runs")
    parser.add_argument("--family", action="append", default=[], help="Train only this family (repeatable)")
    add_options(parser, TrainOptions, skip=("seed",))
    add_options(parser, IndexOptions)
    args = parser.parse_args()
    if args.workers < 1:
        raise ValueError("need --workers >= 1")
    return args, options_from(TrainOptions, args), options_from(IndexOptions, args)


def work(job) -> dict:
    args, options, index_options = job
    trained = pipeline.train(args.features, args.out, options, index_options, args.workers, args.gpu, args.resume,
                             args.family, LogProgress())
    return {"bundle": trained.bundle, "version": trained.manifest.version, "families": sorted(trained.manifest.families),
            "skipped": trained.manifest.skipped}


if __name__ == "__main__":
    run_job(parse, work)
