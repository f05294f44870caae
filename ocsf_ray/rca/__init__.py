"""Root-cause analysis: per-source anomaly windows → networkx causal graph → ranked causes."""

from ocsf_ray.rca.analysis import RcaRun, run_rca, source_kinds
from ocsf_ray.rca.options import RcaOptions

__all__ = ["RcaOptions", "RcaRun", "run_rca", "source_kinds"]
