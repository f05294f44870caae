"""TabularResNet: the embedding model, in the style of Gorishniy et al. 2021 (rtdl).

One embedding table per categorical feature, numerics through one linear layer, a stack
of pre-norm residual blocks, a final norm and a linear map to an L2-normalised
embedding used for nearest-neighbour search. The projection head exists only for the
contrastive loss (SimCLR showed the loss is best computed after one, and the
representation before it is what transfers).

Defaults (d_model 128, 4 blocks) are sized for CPU training: about 0.2M parameters
besides the embedding tables, a few thousand rows/s per core, which still fits tabular
event data with a few dozen columns well; GPUs can take the wider sweeps in
tune_configs/.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class ModelConfig:
    """The shape of a family's TabularResNet (Gorishniy et al., 2021, "Revisiting Deep
    Learning Models for Tabular Data"), saved beside its weights as model_config.json."""

    cardinalities: tuple[int, ...]  # per categorical column: codes 0..cardinality-1
    n_numeric: int
    d_model: int = 128
    n_blocks: int = 4
    hidden_factor: float = 2.0
    dropout: float = 0.1
    embedding_dim: int = 64
    max_category_dim: int = 32
    projection_dim: int = 64

    def category_dims(self) -> list[int]:
        """Embedding width per categorical: grows with log cardinality, capped."""
        return [min(self.max_category_dim, max(4, round(1.6 * math.log2(c + 1) * 2))) for c in self.cardinalities]

    def to_dict(self) -> dict:
        """JSON-ready fields (model_config.json)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        """The config `to_dict` wrote."""
        return cls(**{**data, "cardinalities": tuple(data["cardinalities"])})


class ResidualBlock(nn.Module):
    """x + Dropout(Linear(Dropout(ReLU(Linear(LayerNorm(x))))))."""

    def __init__(self, d_model: int, d_hidden: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.linear_in = nn.Linear(d_model, d_hidden)
        self.linear_out = nn.Linear(d_hidden, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[batch, d_model] → [batch, d_model]."""
        h = self.dropout(F.relu(self.linear_in(self.norm(x))))
        return x + self.dropout(self.linear_out(h))


class TabularResNet(nn.Module):
    """(codes int64 [B, C], numerics float32 [B, N]) → unit-norm embedding [B, embedding_dim]."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        dims = config.category_dims()
        self.categories = nn.ModuleList(nn.Embedding(c, d) for c, d in zip(config.cardinalities, dims))
        d_in = sum(dims) + config.n_numeric
        self.input = nn.Linear(max(d_in, 1), config.d_model)
        d_hidden = int(config.d_model * config.hidden_factor)
        self.blocks = nn.Sequential(*(ResidualBlock(config.d_model, d_hidden, config.dropout) for _ in range(config.n_blocks)))
        self.norm = nn.LayerNorm(config.d_model)
        self.output = nn.Linear(config.d_model, config.embedding_dim)

    def features(self, codes: torch.Tensor, numerics: torch.Tensor) -> torch.Tensor:
        """The input layer's view of a row: category embeddings next to the numerics."""
        parts = [table(codes[:, i]) for i, table in enumerate(self.categories)]
        if self.config.n_numeric:
            parts.append(numerics)
        if not parts:
            return torch.zeros(codes.shape[0], 1, device=codes.device)
        return torch.cat(parts, dim=1)

    def forward(self, codes: torch.Tensor, numerics: torch.Tensor) -> torch.Tensor:
        """codes [batch, categoricals] int64, numerics [batch, n_numeric] float32 →
        L2-normalised embeddings [batch, embedding_dim] (what the k-NN index searches)."""
        x = self.input(self.features(codes, numerics))
        x = self.norm(self.blocks(x))
        return F.normalize(self.output(x), dim=1)


class ProjectionHead(nn.Module):
    """2-layer MLP on top of the embedding, used only by the training loss."""

    def __init__(self, embedding_dim: int, projection_dim: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(embedding_dim, embedding_dim), nn.ReLU(), nn.Linear(embedding_dim, projection_dim)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """[batch, embedding_dim] → [batch, projection_dim]."""
        return self.net(z)


class ContrastiveModel(nn.Module):
    """Encoder + projection head + optional per-column heads for masked-feature prediction.

    The masked-feature heads predict, from the embedding of a corrupted row, which
    columns were replaced (one logit per column): a per-column binary task that is
    well defined for categoricals and numerics alike.
    """

    def __init__(self, config: ModelConfig, masked_feature_heads: bool = False):
        super().__init__()
        self.encoder = TabularResNet(config)
        self.head = ProjectionHead(config.embedding_dim, config.projection_dim)
        n_columns = len(config.cardinalities) + config.n_numeric
        self.mask_heads = nn.Linear(config.embedding_dim, n_columns) if masked_feature_heads and n_columns else None

    def forward(self, codes: torch.Tensor, numerics: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(embedding [batch, embedding_dim], projection [batch, projection_dim]); the
        NT-Xent loss reads the projection, search the embedding (SimCLR's split)."""
        z = self.encoder(codes, numerics)
        return z, self.head(z)
