"""One strategy's life in a race: build and cache once (:func:`setup_strategy`), then one epoch at a time
(:func:`train_epoch`), then what the look-inside views need (:func:`inspect_strategy`).
:mod:`tl_engine.training.race` interleaves the strategies.

Every racer is a :class:`StagedNet` trained by the same loop; what differs is read off the strategy table:
where the cached frozen prefix ends (``f``), which parameters learn at which rate, and, for ``gradual``,
the epoch at which its body unfreezes (a second optimiser joins the head's, which carries on unchanged, so
the head-only epochs are exactly frozen's).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..config import NUM_STAGES, EpochResult, RunConfig
from ..models import SPECS, STRATEGIES, StagedNet, build_racer, frozen_stages, merge_lora
from .passes import EVAL_BATCH, evaluate, flat_params, init_head, run_prefix
from .torchutil import RngStream, amp, augment, batch_sizes, folded_copy, sync, warmup_cosine

CACHE_BUDGET_BYTES = 1_500_000_000  # a frozen prefix larger than this is recomputed per batch instead of cached


class Cancelled(Exception):
    """Raised inside a strategy when the stop event is set; the race then ends cleanly."""


@dataclass
class RaceData:
    """Tensors shared by all strategies of one race: same images, same validation and test sets."""

    x_train: torch.Tensor  # float32, N×3×R×R, normalised for the backbone, channels_last
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[str, ...]
    skipped: int = 0
    skipped_reasons: tuple[str, ...] = ()
    grey: bool = False  # the dataset's images are greyscale (repeated to three channels for the network)


def param_groups(net: StagedNet, strategy: str, cfg: RunConfig, first: int | None = None,
                 body_lr: float | None = None) -> list[dict]:
    """Optimizer groups, one per trainable stage plus the head, named so they can be shown.

    Scratch: one learning rate everywhere. Fine-tune: two rates, the pretrained stages at ``lr_body`` and the
    new, random head at ``lr_head`` (equal by default: on validation a lower body rate was no better,
    docs/tuning.md). LoRA: its adapters at ``lr_body``. Frozen, early, pixels: the head only. ``first``: the
    first stage that learns (default: the strategy's k); ``body_lr`` overrides the body's rate.
    """
    f = frozen_stages(strategy, cfg.frozen_stages) if first is None else first
    pretrained = STRATEGIES[strategy].pretrained
    body_lr = body_lr if body_lr is not None else cfg.lr_body if pretrained else cfg.lr_scratch
    head_lr = cfg.lr_head if pretrained or STRATEGIES[strategy].body == "none" else cfg.lr_scratch
    groups = [{"name": f"stage{i}", "params": [p for p in net.stages[i].parameters() if p.requires_grad],
               "lr": body_lr} for i in range(f, NUM_STAGES)]
    groups = [g for g in groups if g["params"]]
    groups.append({"name": "head", "params": list(net.head.parameters()), "lr": head_lr})
    return groups


# ---- one strategy ---------------------------------------------------------------------------------------------

@dataclass
class StrategyRun:
    """One strategy's state between epochs."""

    name: str
    cfg: RunConfig
    net: StagedNet
    f: int  # stages before this one are frozen and cached (their output is what the loop trains on)
    frozen_part: nn.Module  # the network used to run the frozen prefix (BatchNorm folded)
    train_cache: torch.Tensor | None  # frozen prefix of the training images, or None (augmentation / too big)
    val_cache: torch.Tensor | None
    test_cache: torch.Tensor | None
    steps: list[tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]]  # (optimiser, schedule)
    batches: list[int]
    rng: RngStream
    shuffle: torch.Generator
    theta0: dict[str, torch.Tensor]  # each stage's (and the head's) parameters before training, flattened
    trainable: int
    total: int
    unfreeze_at: int = 0  # gradual: the epoch whose start unlocks stages k..6 (0: never)
    cum: float = 0.0
    last_test: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, repr=False)  # preds, confidences


def setup_strategy(name: str, cfg: RunConfig, data: RaceData, device: torch.device,
                   stop: threading.Event) -> StrategyRun:
    """Build the strategy's network, freeze it, cache what its frozen stages compute, make its optimiser."""
    strat = STRATEGIES[name]
    # Paired: the streams depend on the seed only, so every strategy shuffles alike and starts with the
    # same head (and dropout masks, where the head is all that trains).
    rng = RngStream(cfg.seed, device)
    shuffle = torch.Generator().manual_seed(cfg.seed)
    with rng:
        net = build_racer(name, cfg, len(data.classes))
        init_head(net, cfg.seed)
        net = net.to(device, memory_format=torch.channels_last)
        if strat.head_first:
            net.freeze(NUM_STAGES)  # head only until unfreeze_at: frozen's network, frozen's numbers
        f = cfg.frozen_stages if strat.adapters else net.n_frozen
        net.set_bn_momentum(strat.bn_momentum)
        theta0 = flat_params(merge_lora(net), _part_names(cfg))
        frozen_part, caches = _caches(net, f, cfg, data, device, stop)
        opt = _adamw(param_groups(net, name, cfg, first=f), cfg, device)
        batches = batch_sizes(len(data.y_train), cfg.batch_size)
        sched = warmup_cosine(opt, total_steps=cfg.epochs * len(batches))
    unfreeze = cfg.head_epochs + 1 if strat.head_first and cfg.frozen_stages < NUM_STAGES else 0
    return StrategyRun(name, cfg, net, f, frozen_part, *caches, [(opt, sched)], batches, rng, shuffle, theta0,
                       *_counts(net), unfreeze_at=unfreeze if unfreeze <= cfg.epochs else 0)


def _caches(net: StagedNet, f: int, cfg: RunConfig, data: RaceData, device: torch.device, stop: threading.Event
            ) -> tuple[nn.Module, tuple[torch.Tensor | None, ...]]:
    """Frozen stages never change, so run them once (with BatchNorm folded in: faster). With augmentation the
    training images change every epoch and cannot be cached; validation and test can."""
    frozen_part = folded_copy(net) if f else net
    train = None if cfg.augment else _cached_prefix(frozen_part, data.x_train, f, device, stop)
    return frozen_part, (train, _cached_prefix(frozen_part, data.x_val, f, device, stop),
                         _cached_prefix(frozen_part, data.x_test, f, device, stop))


def _adamw(groups: list[dict], cfg: RunConfig, device: torch.device) -> torch.optim.Optimizer:
    # fused: one kernel for the whole update (CPU and CUDA); saves ~5 ms of every 200 ms step here.
    return torch.optim.AdamW(groups, weight_decay=cfg.weight_decay, fused=device.type in ("cpu", "cuda") or None)


def _counts(net: nn.Module) -> tuple[int, int]:
    return (sum(p.numel() for p in net.parameters() if p.requires_grad), sum(p.numel() for p in net.parameters()))


def _unfreeze(run: StrategyRun, data: RaceData, device: torch.device, stop: threading.Event) -> None:
    """Gradual's second phase: stages k..6 learn from here on, at ``gradual_ratio`` x ``lr_body``, with a
    warm-up and cosine decay of their own over the epochs left; the head's optimiser carries on."""
    cfg, net = run.cfg, run.net
    net.freeze(cfg.frozen_stages)
    run.f = cfg.frozen_stages
    run.frozen_part, (run.train_cache, run.val_cache, run.test_cache) = _caches(net, run.f, cfg, data, device, stop)
    body = [g for g in param_groups(net, run.name, cfg, body_lr=cfg.lr_body * cfg.gradual_ratio)
            if g["name"] != "head"]
    opt = _adamw(body, cfg, device)
    run.steps.append((opt, warmup_cosine(opt, total_steps=(cfg.epochs - run.unfreeze_at + 1) * len(run.batches))))
    run.trainable, run.total = _counts(net)


def train_epoch(run: StrategyRun, n: int, data: RaceData, device: torch.device, stop: threading.Event,
           t0: float) -> EpochResult:
    """Train one epoch, then evaluate on validation and test. ``t0``: when this epoch's clock started."""
    if n == run.unfreeze_at:
        _unfreeze(run, data, device, stop)
    cfg, net, f = run.cfg, run.net, run.f
    n_train = len(data.y_train)
    with run.rng:
        net.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        perm = torch.randperm(n_train, generator=run.shuffle).to(device)
        t_steps = time.perf_counter()
        for idx in torch.split(perm, run.batches):
            if stop.is_set():
                raise Cancelled
            y = data.y_train[idx]
            if run.train_cache is not None:
                x = run.train_cache[idx]
            else:
                x = data.x_train[idx]
                x = run_prefix(run.frozen_part, augment(x, run.shuffle) if cfg.augment else x, f, device)
            with amp(device):
                logits = net.forward_from(x, f).float()
                loss = F.cross_entropy(logits, y)
            for opt, _ in run.steps:
                opt.zero_grad(set_to_none=True)
            loss.backward()
            for opt, sched in run.steps:
                opt.step()
                sched.step()
            loss_sum += loss.detach() * len(idx)
            correct += (logits.argmax(1) == y).sum()
        sync(device)
        t_eval = time.perf_counter()
        # once for both passes; adapters merged into their convolutions first (same outputs, foldable)
        folded = folded_copy(merge_lora(net)) if f < NUM_STAGES else net.eval()
        val_loss, val_acc, _, _ = evaluate(folded, data.x_val, data.y_val, run.val_cache, f, device)
        test_loss, test_acc, pred, conf = evaluate(folded, data.x_test, data.y_test, run.test_cache, f, device)
        run.last_test = (pred, conf)
    sync(device)
    t_end = time.perf_counter()
    seconds = t_end - t0
    run.cum += seconds
    return EpochResult(
        strategy=run.name, epoch=n,
        train_loss=float(loss_sum) / n_train, train_acc=float(correct) / n_train,
        test_loss=test_loss, test_acc=test_acc, val_loss=val_loss, val_acc=val_acc,
        trainable_params=run.trainable, total_params=run.total,
        seconds=seconds, cum_seconds=run.cum, train_seconds=t_eval - t0, eval_seconds=t_end - t_eval,
        images_per_s=n_train / max(t_eval - t_steps, 1e-9),
    )


def inspect_strategy(run: StrategyRun, data: RaceData) -> dict:
    """After the last epoch: confusion matrix, accuracy per class, Δθ per stage, and the test predictions."""
    n = len(data.classes)
    pred, conf = run.last_test
    true = data.y_test.cpu()
    cm = torch.bincount(true * n + pred.cpu(), minlength=n * n).reshape(n, n)
    per_class = [float(cm[c, c] / cm[c].sum()) if cm[c].sum() else math.nan for c in range(n)]
    now = flat_params(merge_lora(run.net), _part_names(run.cfg))  # LoRA: Δθ of the merged weights
    delta = {name: float((now[name] - run.theta0[name]).norm() / run.theta0[name].norm().clamp_min(1e-12))
             for name in now}
    return {"confusion_matrix": cm.tolist(), "per_class_acc": per_class, "delta_theta": delta,
            "test_pred": pred.tolist(), "test_conf": [round(float(c), 4) for c in conf]}


# ---- helpers --------------------------------------------------------------------------------------------------

def _part_names(cfg: RunConfig) -> tuple[str, ...]:
    return (*SPECS[cfg.backbone].stage_names, "head")


def _cached_prefix(frozen_part: nn.Module, x: torch.Tensor, f: int, device: torch.device,
                   stop: threading.Event) -> torch.Tensor | None:
    """The frozen stages' output for the whole set, or None when it would not fit the cache budget."""
    if f == 0:
        return x
    first = run_prefix(frozen_part, x[:2], f, device)
    if first[0].numel() * 4 * len(x) > CACHE_BUDGET_BYTES:
        return None
    chunks = []
    for i in range(0, len(x), EVAL_BATCH):
        if stop.is_set():  # caching 5,000 images takes seconds: stay responsive to Stop
            raise Cancelled
        chunks.append(run_prefix(frozen_part, x[i:i + EVAL_BATCH], f, device))
    out = torch.cat(chunks)
    return out.contiguous(memory_format=torch.channels_last) if out.dim() == 4 else out
