"""Ray job: `ocsf-ray train`, contrastive pretraining and indexing of a bundle, on the cluster.

    ray job submit --address http://HEAD:8265 --working-dir . -- python jobs/train.py ARGS

ARGS are those of `ocsf-ray train` (`python jobs/train.py --help`). Inputs and outputs may be
cluster storage (s3://, gs://): see docs/OPERATIONS.md.
"""

from ocsf_ray.entry import run_verb

if __name__ == "__main__":
    run_verb("train")
