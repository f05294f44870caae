"""Index and scoring settings with their defaults in one place."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class IndexOptions:
    """How each family's reference index is built and searched.

    k 20: the mean distance to 20 neighbours is stable against a few duplicated or
        near-duplicated normal events (a distance to 1 neighbour is not), and 20 is the
        usual k of k-NN anomaly detectors on tabular benchmarks.
    reference_max: the reference set is the family's training features, uniformly
        sampled down to this many rows; 200k embeddings of 64 floats are 51 MB.
    exact_max: up to this many reference vectors the index is exact (IndexFlat); beyond
        it an IVF index answers in a fraction of the time, at a recall that is measured
        against exact search on `recall_sample` queries each time one is built.
    exclusion_minutes: an event's neighbours must lie at least this far from it in time
        whenever it falls inside the reference period (as when an archive is scored
        against itself). Without it, an incident's own events (a burst of identical
        failed logins, an hour of slow queries) are each other's neighbours and look
        normal: the "trivial match" problem that matrix-profile discord search solves the
        same way, with an exclusion zone. 60 minutes covers incidents up to an hour;
        a reference spanning under 8 hours gets shards of an eighth of its span (15
        minutes for 2 hours), so short archives keep the exclusion; 0 turns it off.
        Field-rarity counts skip the same shards (`ocsf_ray.index.rarity`).
    nlist: IVF cells (0 = about 4 * sqrt(n), FAISS' rule of thumb); nprobe: cells
        visited per query. pq_m > 0 compresses vectors with product quantisation
        (IVF-PQ, m sub-vectors) for references too large for memory.
    """

    k: int = 20
    exclusion_minutes: float = 60.0
    reference_max: int = 200_000
    exact_max: int = 100_000
    nlist: int = 0
    nprobe: int = 16
    pq_m: int = 0
    recall_sample: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        """Raises ValueError naming every setting out of its range."""
        problems = [message for bad, message in (
            (self.k < 1, "k >= 1"), (self.reference_max <= self.k, "reference-max > k"),
            (self.exact_max < 0, "exact-max >= 0"), (self.nprobe < 1, "nprobe >= 1"),
            (self.exclusion_minutes < 0, "exclusion-minutes >= 0 (0 = off)"),
        ) if bad]
        if problems:
            raise ValueError("need " + ", ".join(problems))

    def to_dict(self) -> dict:
        """JSON-ready fields."""
        return asdict(self)
