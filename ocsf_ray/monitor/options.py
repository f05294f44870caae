"""Monitoring thresholds with their defaults in one place (the CLI fills a few)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class MonitorOptions:
    """What counts as drift, and how champion and challenger are compared.

    max_rows: each family is compared on a uniform sample of at most this many current
        rows (KS and PSI settle long before 20k rows), against all the reference rows the
        bundle keeps (at most `IndexOptions.reference_max`).
    min_rows: a family with fewer current rows is reported but not tested (PSI over
        ~20 bins has a noise floor of about bins / rows).
    fdr: Benjamini-Hochberg false discovery rate over the KS tests of one family's
        embedding dimensions (and, separately, of its numeric features).
    ks_min_statistic: a dimension drifts only when its BH-adjusted p-value is below `fdr`
        *and* its KS statistic (the largest gap between the two CDFs) is at least this.
        Events are not independent draws (bursts, sessions, per-minute windows), so
        p-values alone flag operationally meaningless gaps at 20k rows; 0.1 is a
        10-point gap somewhere in the distribution.
    max_drifted_dims: an embedding drifts when more than this share of its dimensions do.
    max_drifted_numerics: the numeric features drift when more than this share of them do
        (cyclic time-of-day columns are left out: they say when the sample was taken).
    max_psi: population stability index of a categorical column (codes binned as missing,
        unseen, the `psi_bins` most frequent known values, and the rest); 0.1-0.2 is the
        usual "moderate shift" band, above 0.2 a significant one.
    max_new_category_rate: share of current rows whose value is not in the vocabulary
        (code 1), beyond the reference's own churn: the share of its later half whose
        value its earlier half never had (see `drift.value_churn`).
    max_reference_churn: a categorical whose values turn over faster than this within
        the reference (identifiers, versions, long-tailed users and addresses) is
        volatile: its PSI is reported, not judged (its values move with time by nature).
    percentile: the flagging threshold whose flag rate is checked; percentile p flags
        100 - p % of events like the reference.
    max_flag_ratio, flag_alpha: the score distribution drifts when the flag rate exceeds
        `max_flag_ratio` times the expected rate and a one-sided binomial test rejects
        the expected rate at `flag_alpha`.
    holdout_fraction: with --retrain, the latest share of the current data by time,
        excluded from the challenger's training, on which champion and challenger are
        both measured.
    seed: the sampling seed (the same inputs give the same report).
    """

    max_rows: int = 20_000
    min_rows: int = 500
    fdr: float = 0.05
    ks_min_statistic: float = 0.1
    max_drifted_dims: float = 0.25
    max_drifted_numerics: float = 0.25
    max_psi: float = 0.2
    psi_bins: int = 20
    max_new_category_rate: float = 0.05
    max_reference_churn: float = 0.1
    percentile: float = 99.0
    max_flag_ratio: float = 2.0
    flag_alpha: float = 0.01
    holdout_fraction: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_rows < self.min_rows or self.min_rows < 2:
            raise ValueError(f"need max_rows >= min_rows >= 2, got {self.max_rows} and {self.min_rows}")
        if not 0 < self.percentile < 100:
            raise ValueError(f"percentile must be between 0 and 100, got {self.percentile}")
        if not 0 < self.holdout_fraction < 1:
            raise ValueError(f"holdout_fraction must be between 0 and 1, got {self.holdout_fraction}")

    @property
    def expected_flag_rate(self) -> float:
        return 1.0 - self.percentile / 100.0

    def to_dict(self) -> dict:
        """JSON-ready fields."""
        return asdict(self)
