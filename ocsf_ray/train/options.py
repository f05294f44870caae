"""Training settings with their defaults in one place (CLI, jobs and Tune fill them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

MIN_SCORED_ROWS = 100  # fewer rows cannot place a family's 99th percentile: the family is not scored


@dataclass(frozen=True)
class TrainOptions:
    """Model shape, objective and loop settings for one family's pretraining.

    corruption_rate 0.4: SCARF found 0.3-0.6 best; higher makes views too unlike the row.
    temperature 0.1: the usual NT-Xent value for batch sizes of a few hundred.
    val_batch_size: retrieval accuracy is measured among this many rows, fixed so that
        trials with different training batch sizes compare on the same task.
    min_rows: a family with fewer rows gets no encoder; with at least MIN_SCORED_ROWS it
        is still indexed and scored by its feature terms (feature k-NN, field rarity).
    """

    epochs: int = 10
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 1e-5
    temperature: float = 0.1
    corruption_rate: float = 0.4
    masked_feature_weight: float = 0.0
    d_model: int = 128
    n_blocks: int = 4
    dropout: float = 0.1
    embedding_dim: int = 64
    patience: int = 3
    val_fraction: float = 0.1
    val_batch_size: int = 256
    min_rows: int = 512
    seed: int = 0
    max_batches_per_epoch: int = 0  # 0 = the whole shard each epoch

    def __post_init__(self) -> None:
        """Raises ValueError naming every setting out of its range."""
        problems = [message for bad, message in (
            (self.epochs < 1, "epochs >= 1"), (self.batch_size < 2, "batch-size >= 2"),
            (self.learning_rate <= 0, "learning-rate > 0"), (self.temperature <= 0, "temperature > 0"),
            (not 0 < self.corruption_rate < 1, "0 < corruption-rate < 1"),
            (self.max_batches_per_epoch < 0, "max-batches-per-epoch >= 0 (0 = all)"),
        ) if bad]
        if problems:
            raise ValueError("need " + ", ".join(problems))

    def to_dict(self) -> dict:
        """JSON-ready fields."""
        return asdict(self)
