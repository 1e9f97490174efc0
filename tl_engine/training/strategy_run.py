"""One strategy's life in a race: build and cache once (:func:`setup_strategy`), then one epoch at a time
(:func:`train_epoch`), then what the look-inside views need (:func:`inspect_strategy`).
:mod:`tl_engine.training.race` interleaves the strategies.
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
from ..models import SPECS, STRATEGIES, StagedNet, build, frozen_stages
from .torchutil import RngStream, amp, augment, batch_sizes, folded_copy, sync, warmup_cosine

CACHE_BUDGET_BYTES = 1_500_000_000  # a frozen prefix larger than this is recomputed per batch instead of cached
EVAL_BATCH = 64  # small eval batches are faster on CPU (they stay in cache)


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


def param_groups(net: StagedNet, strategy: str, cfg: RunConfig) -> list[dict]:
    """Optimizer groups, one per trainable stage plus the head, named so they can be shown.

    Scratch: one learning rate everywhere. Fine-tune: two rates, the pretrained stages at ``lr_body`` and the
    new, random head at ``lr_head`` (equal by default: on validation a lower body rate was no better,
    docs/tuning.md). Frozen: the head only.
    """
    f = frozen_stages(strategy, cfg.frozen_stages)
    pretrained = STRATEGIES[strategy].pretrained
    body_lr = cfg.lr_body if pretrained else cfg.lr_scratch
    head_lr = cfg.lr_head if pretrained else cfg.lr_scratch
    groups = [{"name": f"stage{i}", "params": list(net.stages[i].parameters()), "lr": body_lr}
              for i in range(f, NUM_STAGES)]
    groups.append({"name": "head", "params": list(net.head.parameters()), "lr": head_lr})
    return groups


# ---- one strategy ---------------------------------------------------------------------------------------------

@dataclass
class StrategyRun:
    """One strategy's state between epochs."""

    name: str
    cfg: RunConfig
    net: StagedNet
    f: int  # frozen stages
    frozen_part: nn.Module  # the network used to run the frozen prefix (BatchNorm folded)
    train_cache: torch.Tensor | None  # frozen prefix of the training images, or None (augmentation / too big)
    val_cache: torch.Tensor | None
    test_cache: torch.Tensor | None
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    batches: list[int]
    rng: RngStream
    shuffle: torch.Generator
    theta0: dict[str, torch.Tensor]  # each stage's (and the head's) parameters before training, flattened
    trainable: int
    total: int
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
        net = build(cfg.backbone, len(data.classes), pretrained=strat.pretrained)
        _init_head(net, cfg.seed)
        net = net.to(device, memory_format=torch.channels_last)
        f = strat.frozen_stages(cfg.frozen_stages)
        net.freeze(f)
        net.set_bn_momentum(strat.bn_momentum)
        theta0 = _flat_params(net, _part_names(cfg))
        # Frozen stages never change, so run them once (with BatchNorm folded in: faster). With augmentation
        # the training images change every epoch and cannot be cached; validation and test can.
        frozen_part = folded_copy(net) if f else net
        train_cache = None if cfg.augment else _cached_prefix(frozen_part, data.x_train, f, device, stop)
        val_cache = _cached_prefix(frozen_part, data.x_val, f, device, stop)
        test_cache = _cached_prefix(frozen_part, data.x_test, f, device, stop)
        # fused: one kernel for the whole update (CPU and CUDA); saves ~5 ms of every 200 ms step here.
        opt = torch.optim.AdamW(param_groups(net, name, cfg), weight_decay=cfg.weight_decay,
                                fused=device.type in ("cpu", "cuda") or None)
        batches = batch_sizes(len(data.y_train), cfg.batch_size)
        sched = warmup_cosine(opt, total_steps=cfg.epochs * len(batches))
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    total = sum(p.numel() for p in net.parameters())
    return StrategyRun(name, cfg, net, f, frozen_part, train_cache, val_cache, test_cache, opt, sched, batches, rng,
                shuffle, theta0, trainable, total)


def train_epoch(run: StrategyRun, n: int, data: RaceData, device: torch.device, stop: threading.Event,
           t0: float) -> EpochResult:
    """Train one epoch, then evaluate on validation and test. ``t0``: when this epoch's clock started."""
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
                x = _prefix(run.frozen_part, augment(x, run.shuffle) if cfg.augment else x, f, device)
            with amp(device):
                logits = net.forward_from(x, f).float()
                loss = F.cross_entropy(logits, y)
            run.opt.zero_grad(set_to_none=True)
            loss.backward()
            run.opt.step()
            run.sched.step()
            loss_sum += loss.detach() * len(idx)
            correct += (logits.argmax(1) == y).sum()
        sync(device)
        t_eval = time.perf_counter()
        folded = folded_copy(net) if f < NUM_STAGES else net.eval()  # once for both passes
        val_loss, val_acc, _, _ = _evaluate(folded, data.x_val, data.y_val, run.val_cache, f, device)
        test_loss, test_acc, pred, conf = _evaluate(folded, data.x_test, data.y_test, run.test_cache, f, device)
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
    now = _flat_params(run.net, _part_names(run.cfg))
    delta = {name: float((now[name] - run.theta0[name]).norm() / run.theta0[name].norm().clamp_min(1e-12))
             for name in now}
    return {"confusion_matrix": cm.tolist(), "per_class_acc": per_class, "delta_theta": delta,
            "test_pred": pred.tolist(), "test_conf": [round(float(c), 4) for c in conf]}


# ---- helpers --------------------------------------------------------------------------------------------------

def _part_names(cfg: RunConfig) -> tuple[str, ...]:
    return (*SPECS[cfg.backbone].stage_names, "head")


def _init_head(net: StagedNet, seed: int) -> None:
    """A head initialised from the seed alone (torch's nn.Linear default init), the same for every strategy."""
    g = torch.Generator().manual_seed(seed)
    linear = net.head[-1]
    nn.init.kaiming_uniform_(linear.weight, a=math.sqrt(5), generator=g)
    bound = 1 / math.sqrt(linear.in_features)
    nn.init.uniform_(linear.bias, -bound, bound, generator=g)


def _flat_params(net: StagedNet, names: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Each stage's and the head's parameters as one flat CPU vector (BatchNorm buffers are not parameters)."""
    mods = [*net.stages, net.head]
    return {n: torch.cat([p.detach().float().reshape(-1).cpu() for p in m.parameters()])
            for n, m in zip(names, mods, strict=True)}


def _prefix(net: nn.Module, x: torch.Tensor, f: int, device: torch.device) -> torch.Tensor:
    """Output of the ``f`` frozen stages (no graph: nothing before them learns)."""
    if f == 0:
        return x
    with torch.no_grad(), amp(device):
        return net.prefix(x, f).float()


def _cached_prefix(frozen_part: nn.Module, x: torch.Tensor, f: int, device: torch.device,
                   stop: threading.Event) -> torch.Tensor | None:
    """The frozen stages' output for the whole set, or None when it would not fit the cache budget."""
    if f == 0:
        return x
    first = _prefix(frozen_part, x[:2], f, device)
    if first[0].numel() * 4 * len(x) > CACHE_BUDGET_BYTES:
        return None
    chunks = []
    for i in range(0, len(x), EVAL_BATCH):
        if stop.is_set():  # caching 5,000 images takes seconds: stay responsive to Stop
            raise Cancelled
        chunks.append(_prefix(frozen_part, x[i:i + EVAL_BATCH], f, device))
    out = torch.cat(chunks)
    return out.contiguous(memory_format=torch.channels_last) if out.dim() == 4 else out


def _evaluate(net: nn.Module, x: torch.Tensor, y: torch.Tensor, cache: torch.Tensor | None, f: int,
              device: torch.device) -> tuple[float, float, torch.Tensor, torch.Tensor]:
    """Loss, accuracy, predictions and their confidences in eval mode (``net``: BatchNorm folded).

    ``cache`` holds the frozen prefix's output; without it (too big to cache) the whole network runs.
    """
    start, x_in = (f, cache) if cache is not None else (0, x)
    loss = torch.zeros((), device=y.device)
    preds, confs = [], []
    with torch.inference_mode(), amp(device):
        for i in range(0, len(y), EVAL_BATCH):
            logits = net.forward_from(x_in[i:i + EVAL_BATCH], start).float()
            loss += F.cross_entropy(logits, y[i:i + EVAL_BATCH], reduction="sum")
            conf, pred = logits.softmax(1).max(1)
            preds.append(pred)
            confs.append(conf)
    n = len(y)
    if not n:
        return math.nan, math.nan, torch.zeros(0, dtype=torch.long), torch.zeros(0)
    pred, conf = torch.cat(preds).cpu(), torch.cat(confs).cpu()
    return float(loss) / n, int((pred == y.cpu()).sum()) / n, pred, conf
