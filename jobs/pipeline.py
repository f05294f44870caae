"""Ray job: `ocsf-ray run`, the whole pipeline (featurize, train, index, score, explain, evaluate, RCA, report), on the cluster.

    ray job submit --address http://HEAD:8265 --working-dir . -- python jobs/pipeline.py ARGS

ARGS are those of `ocsf-ray run` (`python jobs/pipeline.py --help`). Inputs and outputs may be
cluster storage (s3://, gs://): see docs/OPERATIONS.md.
"""

from ocsf_ray.entry import run_verb

if __name__ == "__main__":
    run_verb("run")
