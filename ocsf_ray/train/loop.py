"""The per-worker training loop run by Ray Train (one copy per worker, DDP between them).

Each epoch: SCARF views of every batch of the worker's shard, NT-Xent on their
projections (plus, optionally, masked-feature prediction), then validation on the
worker's shard of the latest events, metrics averaged over workers, a checkpoint from
rank 0, and early stopping on the temperature-free retrieval accuracy.
"""

from __future__ import annotations

import os
import tempfile
import time

import torch
from torch.nn import functional as F

from ocsf_ray.train.bundle import STATE
from ocsf_ray.train.data import collate
from ocsf_ray.train.model import ContrastiveModel, ModelConfig
from ocsf_ray.train.objective import alignment_uniformity, corrupt, nt_xent, retrieval_top1
from ocsf_ray.train.options import TrainOptions


def _views(model, codes, numerics, options: TrainOptions, generator=None):
    c1, n1, m1 = corrupt(codes, numerics, options.corruption_rate, generator)
    c2, n2, m2 = corrupt(codes, numerics, options.corruption_rate, generator)
    z1, p1 = model(c1, n1)
    z2, p2 = model(c2, n2)
    loss = nt_xent(p1, p2, options.temperature)
    heads = getattr(model, "module", model).mask_heads
    if heads is not None and options.masked_feature_weight > 0:
        masked = F.binary_cross_entropy_with_logits(heads(z1), m1.float()) + F.binary_cross_entropy_with_logits(heads(z2), m2.float())
        loss = loss + options.masked_feature_weight * masked / 2
    return loss


def _mean_over_workers(values: list[float], device) -> list[float]:
    """Sum each value and a count over workers; returns the means."""
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(tensor)
    *sums, count = tensor.tolist()
    return [s / max(count, 1) for s in sums]


def validate(model, shard, columns, options: TrainOptions, device) -> dict:
    """Validation metrics (`val_top1` and the rest) of `model` (anything returning
    (embedding, projection) from (codes, numerics)) over `shard` (anything with Ray
    Data's `iter_batches`), averaged over workers when DDP runs. The corruption draws
    are seeded, so the same model on the same rows always scores the same; `monitor`
    compares a champion and a challenger bundle on held-out rows with it."""
    model.eval()
    generator = torch.Generator(device=device).manual_seed(options.seed + 1)
    loss = top1 = align = uniform = 0.0
    batches = 0
    with torch.no_grad():
        for batch in shard.iter_batches(batch_size=options.val_batch_size, batch_format="numpy", drop_last=False):
            codes, numerics = (t.to(device) for t in collate(batch, *columns))
            if codes.shape[0] < 2:
                continue
            c1, n1, _ = corrupt(codes, numerics, options.corruption_rate, generator)
            z, p = model(codes, numerics)
            z1, p1 = model(c1, n1)
            loss += nt_xent(p, p1, options.temperature).item()
            top1 += retrieval_top1(z, z1)
            a, u = alignment_uniformity(z, z1)
            align, uniform, batches = align + a, uniform + u, batches + 1
    val_loss, val_top1, val_align, val_uniform = _mean_over_workers([loss, top1, align, uniform, batches], device)
    return {"val_loss": val_loss, "val_top1": val_top1, "val_alignment": val_align, "val_uniformity": val_uniform}


def train_loop_per_worker(config: dict) -> None:
    """One Ray Train worker's pretraining of a family's encoder (DDP across workers):
    SCARF views (a `corruption_rate` share of each row's columns replaced by values from
    other rows; Bahri et al., 2022) contrasted with NT-Xent (SimCLR; Chen et al., 2020),
    plus an optional masked-feature loss. Early-stops when validation retrieval top-1 has
    not improved for `patience` epochs; reports per-epoch metrics (train loss,
    samples/s, val loss, top-1, alignment and uniformity) with a checkpoint from rank 0.

    `config`: `options` (TrainOptions as a dict), `model` (ModelConfig as a dict),
    `categorical` and `numeric` (the feature columns), `resume_from` (a checkpoint URI or
    None). Datasets `train` and `val` come from the trainer."""
    import ray.train
    import ray.train.torch

    options = TrainOptions(**config["options"])
    model_config = ModelConfig.from_dict(config["model"])
    columns = (config["categorical"], config["numeric"])
    torch.manual_seed(options.seed)
    device = ray.train.torch.get_device()
    on_gpu = device.type == "cuda"

    model = ContrastiveModel(model_config, masked_feature_heads=options.masked_feature_weight > 0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=options.learning_rate, weight_decay=options.weight_decay)
    start_epoch, best, stale, history = 0, float("-inf"), 0, []
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None and config.get("resume_from"):
        checkpoint = ray.train.Checkpoint(config["resume_from"])
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            state = torch.load(os.path.join(directory, STATE), map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, best, stale, history = state["epoch"] + 1, state["best"], state["stale"], state["history"]
    model = ray.train.torch.prepare_model(model)

    train_shard = ray.train.get_dataset_shard("train")
    val_shard = ray.train.get_dataset_shard("val")
    world = ray.train.get_context().get_world_size()
    if not history:  # the untrained model's score: the bar training has to clear
        history.append({"epoch": -1, **validate(model, val_shard, columns, options, device)})
    for epoch in range(start_epoch, options.epochs):
        if stale >= options.patience:
            break
        model.train()
        started, rows, total, steps = time.perf_counter(), 0, 0.0, 0
        batches = train_shard.iter_batches(
            batch_size=options.batch_size, batch_format="numpy", drop_last=True,
            local_shuffle_buffer_size=options.batch_size * 8, local_shuffle_seed=options.seed + epoch,
        )
        for step, batch in enumerate(batches):
            if options.max_batches_per_epoch and step >= options.max_batches_per_epoch:
                break
            codes, numerics = (t.to(device) for t in collate(batch, *columns))
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=on_gpu):
                loss = _views(model, codes, numerics, options)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            rows, total, steps = rows + codes.shape[0], total + loss.item(), steps + 1
        elapsed = time.perf_counter() - started
        metrics = {
            "epoch": epoch, "train_loss": _mean_over_workers([total, steps], device)[0],
            "samples_per_s": rows * world / max(elapsed, 1e-9),
            **validate(model, val_shard, columns, options, device),
        }
        improved = metrics["val_top1"] > best
        best, stale = (metrics["val_top1"], 0) if improved else (best, stale + 1)
        metrics["best_val_top1"] = best
        history.append(metrics)
        with tempfile.TemporaryDirectory() as directory:
            saved = None
            if ray.train.get_context().get_world_rank() == 0:
                state = {"model": getattr(model, "module", model).state_dict(), "optimizer": optimizer.state_dict(),
                         "epoch": epoch, "best": best, "stale": stale, "history": history}
                torch.save(state, os.path.join(directory, STATE))
                saved = ray.train.Checkpoint.from_directory(directory)
            ray.train.report(metrics, checkpoint=saved)
