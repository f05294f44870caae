"""Log message templates mined with Drain, saved as plain JSON and applied without refitting.

Source: P. He, J. Zhu, Z. Zheng and M. R. Lyu, "Drain: An Online Log Parsing Approach
with Fixed Depth Tree", ICWS 2017; the implementation is the drain3 library
(`drain3.drain.Drain` inside a `drain3.TemplateMiner`). Drain groups messages by token
count, then by their first `depth - 2` tokens, and within that leaf joins a message to the
cluster whose template shares at least `sim_th` of its tokens, turning the tokens that
differ into `<*>`: `User 17 logged in from <ip>` and `User alice logged in from <ip>`
become `User <*> logged in from <ip>`.

Masks first: the variable parts every user knows (numbers, IPs, UUIDs, ... see
`ocsf_ray.features.normalise.MESSAGE_MASKS`) are replaced by `<num>`, `<ip>`, ... before
Drain sees a message, so templates keep them (drain3's masking instructions, with its
`<`/`>` mask prefix and suffix). The masking itself is done by Polars regular expressions,
for a whole column at once, at fit and at transform time alike; the state records the
masks as drain3 `MaskingInstruction`s, and `template_miner(state).match(raw_message)` (drain3
masking in Python) gives the same cluster for the masks' usual inputs.

State (`TemplateState`): the templates in drain3 cluster-id order (cluster i+1 has
templates[i]), the Drain parameters and the masks. It is what a FeatureSpec saves (JSON,
no pickle); `template_miner` rebuilds Drain's prefix tree from it once per state (cached)
and only ever matches against it (`Drain.match`, which changes nothing), so scoring a
message never alters the templates a model was trained with.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial

import polars as pl

MATCH_STRATEGY = "fallback"  # tree search, then every template of the same token count
PARAM = "<*>"  # drain3's wildcard token with the "<" / ">" mask prefix and suffix


@dataclass(frozen=True)
class Mask:
    """One drain3 masking instruction (the keys of drain3's own JSON config): every match
    of `regex_pattern` becomes `<mask_with>`."""

    regex_pattern: str
    mask_with: str


@dataclass(frozen=True)
class TemplateState:
    """Mined Drain templates of one message column, with how they were mined.

    templates: template strings (tokens joined by one space, wildcards `<*>`), in drain3
        cluster-id order: cluster id i + 1 has templates[i].
    masking: the masks applied, in order, before Drain (`normalise.MESSAGE_MASKS` at fit time).
    depth / sim_th / max_children: drain3's `Drain(depth, sim_th, max_children)`.
    """

    templates: tuple[str, ...]
    masking: tuple[Mask, ...]
    depth: int = 4
    sim_th: float = 0.4
    max_children: int = 100

    @property
    def masks(self) -> tuple[tuple[str, str], ...]:
        """The masks as `normalise.masked` takes them: (name, regex) pairs."""
        return tuple((m.mask_with, m.regex_pattern) for m in self.masking)

    @classmethod
    def from_dict(cls, data: dict) -> "TemplateState":
        """The inverse of `dataclasses.asdict` (lists from JSON become tuples)."""
        return cls(
            templates=tuple(data["templates"]),
            masking=tuple(Mask(m["regex_pattern"], m["mask_with"]) for m in data["masking"]),
            depth=int(data["depth"]), sim_th=float(data["sim_th"]), max_children=int(data["max_children"]),
        )


def _config(masking: tuple[Mask, ...], depth: int, sim_th: float, max_children: int):
    from drain3.masking import MaskingInstruction
    from drain3.template_miner_config import TemplateMinerConfig

    config = TemplateMinerConfig()  # built in code: drain3 would otherwise read ./drain3.ini
    config.drain_depth, config.drain_sim_th, config.drain_max_children = depth, sim_th, max_children
    config.masking_instructions = [MaskingInstruction(m.regex_pattern, m.mask_with) for m in masking]
    config.mask_prefix, config.mask_suffix = "<", ">"
    return config


def _new_miner(masking: tuple[Mask, ...], depth: int, sim_th: float, max_children: int):
    from drain3 import TemplateMiner

    if not 0.0 < sim_th <= 1.0:
        raise ValueError(f"sim_th must lie in (0, 1], got {sim_th}")
    if max_children < 2:
        raise ValueError(f"max_children must be at least 2, got {max_children}")
    return TemplateMiner(config=_config(masking, depth, sim_th, max_children))  # depth < 3: ValueError


def mine_templates(
    messages: Iterable[str], masks: Sequence[tuple[str, str]],
    depth: int = 4, sim_th: float = 0.4, max_children: int = 100,
) -> TemplateState:
    """Drain templates of `messages`, already masked with `masks` ((name, regex) pairs,
    e.g. `normalise.MESSAGE_MASKS`), fed once each in the given order (Drain is online: the
    order matters, so pass a deterministic one, most frequent first). Raises ValueError for
    depth < 3, sim_th outside (0, 1] or max_children < 2."""
    masking = tuple(Mask(pattern, name) for name, pattern in masks)
    miner = _new_miner(masking, depth, sim_th, max_children)
    for message in messages:
        miner.drain.add_log_message(message)
    clusters = sorted(miner.drain.clusters, key=lambda c: c.cluster_id)
    return TemplateState(tuple(c.get_template() for c in clusters), masking, depth, sim_th, max_children)


@lru_cache(maxsize=64)
def template_miner(state: TemplateState):
    """A drain3 `TemplateMiner` holding exactly the clusters of `state` (ids 1..n), built
    once per state: transforms run per online request and reuse it. Use it to match only
    (`.drain.match` on masked text, `.match` on raw text): `add_log_message` would change
    the cached, shared templates."""
    from drain3.drain import LogCluster

    miner = _new_miner(state.masking, state.depth, state.sim_th, state.max_children)
    drain = miner.drain
    for cluster_id, template in enumerate(state.templates, start=1):
        cluster = LogCluster(template.split(), cluster_id)
        drain.id_to_cluster[cluster_id] = cluster
        drain.add_seq_to_prefix_tree(drain.root_node, cluster)
    drain.clusters_counter = len(state.templates)
    return miner


def match_templates(state: TemplateState, masked: Sequence[str]) -> list[str | None]:
    """The template of each masked message (aligned with `masked`), or None where no
    template matches it in full (every token equal or a `<*>`)."""
    drain = template_miner(state).drain
    found = (drain.match(message, full_search_strategy=MATCH_STRATEGY) for message in masked)
    return [None if cluster is None else cluster.get_template() for cluster in found]


def _series_templates(masked: pl.Series, state: TemplateState) -> pl.Series:
    """Masked messages → templates, matching each distinct message once; unmatched
    messages keep their masked text, nulls stay null."""
    distinct = masked.drop_nulls().unique().to_list()
    if not distinct:
        return masked.cast(pl.String)
    mapped = [m if t is None else t for m, t in zip(distinct, match_templates(state, distinct))]
    return masked.replace_strict(distinct, mapped, default=None, return_dtype=pl.String)


def drain_templates(masked: pl.Expr, state: TemplateState) -> pl.Expr:
    """An expression of masked message text (`normalise.masked` with `state.masks`) mapped
    to its Drain template (String). A message no template matches stays its masked text,
    which is never a template string (a template's own text matches it), so a vocabulary of
    templates sends it to its unseen code; nulls stay null."""
    return masked.map_batches(partial(_series_templates, state=state), return_dtype=pl.String)
