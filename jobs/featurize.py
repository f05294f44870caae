"""Ray job: `ocsf-ray featurize`, ingestion and feature extraction, on the cluster.

    ray job submit --address http://HEAD:8265 --working-dir . -- python jobs/featurize.py ARGS

ARGS are those of `ocsf-ray featurize` (`python jobs/featurize.py --help`). Inputs and outputs may be
cluster storage (s3://, gs://): see docs/OPERATIONS.md.
"""

from ocsf_ray.entry import run_verb

if __name__ == "__main__":
    run_verb("featurize")
