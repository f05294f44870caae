"""Ray job: `ocsf-ray rca`, root-cause analysis of incident windows, on the cluster.

    ray job submit --address http://HEAD:8265 --working-dir . -- python jobs/rca.py ARGS

ARGS are those of `ocsf-ray rca` (`python jobs/rca.py --help`). Inputs and outputs may be
cluster storage (s3://, gs://): see docs/OPERATIONS.md.
"""

from ocsf_ray.entry import run_verb

if __name__ == "__main__":
    run_verb("rca")
