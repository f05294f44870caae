"""SCARF-style corruption, the NT-Xent loss and temperature-free quality metrics.

Corruption (Bahri et al. 2022, SCARF): for each row, a random subset of columns (each
with probability `rate`) takes the value of the same column in another, random row of
the batch, i.e. a draw from that column's empirical marginal. A corrupted value is
always one that really occurs in the data, column by column; what can be new is only
the *combination* of values within a row, which is the point: the model learns which
combinations are normal. Categorical codes and numerics are corrupted alike; missing
indicators travel with nothing, so a corrupted numeric may sit next to an indicator
that no longer matches it (documented, and harmless to the contrastive task).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def corrupt(
    codes: torch.Tensor, numerics: torch.Tensor, rate: float, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(corrupted codes, corrupted numerics, mask [B, C+N] of replaced cells)."""
    batch = codes.shape[0] if codes.numel() else numerics.shape[0]
    n_cat, n_num = codes.shape[1], numerics.shape[1]
    device = codes.device if codes.numel() else numerics.device
    mask = torch.rand(batch, n_cat + n_num, generator=generator, device=device) < rate
    donors = torch.randint(0, batch, (batch, n_cat + n_num), generator=generator, device=device)
    cat_mask, num_mask = mask[:, :n_cat], mask[:, n_cat:]
    donor_codes = torch.gather(codes, 0, donors[:, :n_cat]) if n_cat else codes
    donor_nums = torch.gather(numerics, 0, donors[:, n_cat:]) if n_num else numerics
    return torch.where(cat_mask, donor_codes, codes), torch.where(num_mask, donor_nums, numerics), mask


def nt_xent(p1: torch.Tensor, p2: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent / InfoNCE over 2B views: each view's positive is its twin, the other
    2B-2 views of the batch are negatives."""
    z = F.normalize(torch.cat([p1, p2]), dim=1)
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))
    n = p1.shape[0]
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, targets)


@torch.no_grad()
def retrieval_top1(anchor: torch.Tensor, view: torch.Tensor) -> float:
    """Share of rows whose corrupted view's nearest embedding in the batch is the row
    itself: a retrieval accuracy that does not depend on the loss temperature, so runs
    with different temperatures compare on it. Event archives repeat identical rows; a
    duplicate of the row that ties with it counts as found, since no model could tell
    them apart."""
    similarity = F.normalize(view, dim=1) @ F.normalize(anchor, dim=1).T
    own = similarity.diagonal()
    hits = own >= similarity.max(dim=1).values - 1e-6
    return hits.float().mean().item()


@torch.no_grad()
def alignment_uniformity(z1: torch.Tensor, z2: torch.Tensor) -> tuple[float, float]:
    """Wang & Isola (2020): alignment (mean squared distance of positives, lower is
    better) and uniformity (log mean Gaussian potential, lower is better)."""
    alignment = (z1 - z2).norm(dim=1).pow(2).mean().item()
    uniformity = torch.pdist(z1).pow(2).mul(-2).exp().mean().log().item() if z1.shape[0] > 1 else 0.0
    return alignment, uniformity
