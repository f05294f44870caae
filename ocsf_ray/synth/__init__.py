"""Synthetic OCSF archives (logs, traces, metrics, config changes, logins) with
injected incidents and ground truth; see docs/SYNTH.md."""

from .archive import SynthSummary, generate_archive, generate_shard
from .config import SOURCES, SynthConfig
from .plan import plan_world

__all__ = ["SOURCES", "SynthConfig", "SynthSummary", "generate_archive", "generate_shard", "plan_world"]
