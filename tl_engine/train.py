"""The race: three strategies trained side by side, one epoch each in turn.

Reading order: ``race`` (the generator everything else consumes) -> ``_strategy_run`` (one
strategy's whole life, as a generator of epochs) -> the small helpers below it.

Why it is fast on a 2-core CPU:
- the dataset is preprocessed once into a normalised tensor (no per-epoch PIL work);
- frozen stages are deterministic, so their output is computed once and cached; the frozen
  strategy then trains a linear head on pooled features, and fine-tune runs only its unfrozen
  stages each epoch (with augmentation on, the *training* images change every epoch, so their
  frozen prefix is recomputed per batch under no_grad; the test set stays cached);
- channels_last memory format, all cores, bf16 autocast on CUDA.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .backbones import SPECS, build, warm_up
from .config import NUM_STAGES, STRATEGY_NAMES, EpochResult, RunConfig, summarize
from .data import load_dataset, split_balanced, to_model_input
from .errors import ConfigError
from .strategies import STRATEGIES, frozen_stages, param_groups
from .torchutil import RngStream, amp, augment, batch_sizes, folded_copy, resolve_device, sync, warmup_cosine

CACHE_BUDGET_BYTES = 1_500_000_000  # above this a frozen prefix is recomputed per batch instead of cached
EVAL_BATCH = 64  # small eval batches are faster on CPU (they stay in cache)


class Cancelled(Exception):
    """Raised inside a strategy when the stop event is set; the race then ends cleanly."""


@dataclass
class RaceData:
    """Tensors shared by all strategies of one race: same images, same test set."""

    x_train: torch.Tensor  # float32, N×3×R×R, normalised for the backbone, channels_last
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[str, ...]
    skipped: int = 0


def validate(cfg: RunConfig) -> None:
    """Reject configurations that cannot work, with a message a student can act on."""
    if cfg.backbone not in SPECS:
        raise ConfigError(f"unknown backbone {cfg.backbone!r}; choose one of: {', '.join(SPECS)}")
    if not 0 <= cfg.frozen_stages <= NUM_STAGES:
        raise ConfigError(f"frozen stages k must be between 0 and {NUM_STAGES}, got {cfg.frozen_stages}")
    bad = [s for s in cfg.strategies if s not in STRATEGY_NAMES]
    if bad or not cfg.strategies:
        raise ConfigError(f"strategies must be a non-empty subset of {', '.join(STRATEGY_NAMES)}, got {bad}")
    if cfg.epochs < 1:
        raise ConfigError(f"epochs must be at least 1, got {cfg.epochs}")
    if not 32 <= cfg.resolution <= 320:
        raise ConfigError(f"resolution must be between 32 and 320 pixels, got {cfg.resolution}")
    if cfg.batch_size < 2:
        raise ConfigError(f"batch size must be at least 2, got {cfg.batch_size}")
    for name in ("lr_head", "lr_body", "lr_scratch"):
        if not getattr(cfg, name) > 0:
            raise ConfigError(f"{name} must be a positive number, got {getattr(cfg, name)}")
    resolve_device(cfg.device)


def prepare_data(cfg: RunConfig, device: torch.device) -> RaceData:
    """Load, split (class-balanced) and preprocess the dataset once for the whole race."""
    ds = load_dataset(cfg.dataset)
    xtr, ytr, xte, yte = split_balanced(ds, cfg.train_size, cfg.test_size, cfg.seed)
    spec = SPECS[cfg.backbone]

    def prep(x):
        return to_model_input(x, cfg.resolution, spec.mean, spec.std).to(device, memory_format=torch.channels_last)

    return RaceData(prep(xtr), torch.as_tensor(ytr, device=device), prep(xte), torch.as_tensor(yte, device=device),
                    tuple(ds.info.classes), ds.skipped)


def race(cfg: RunConfig, stop: threading.Event | None = None, data: RaceData | None = None,
         models: dict[str, torch.nn.Module] | None = None) -> Iterator[EpochResult]:
    """Train the strategies of ``cfg`` round-robin, one epoch each in turn, yielding every epoch.

    The curves grow together, so a UI can draw them racing. Setting ``stop`` ends the race
    between two batches; epochs already yielded stay valid, nothing half-finished is yielded.

    Args:
        cfg: what to run.
        stop: set it (from any thread) to cancel.
        data: preprocessed tensors to reuse (default: built from ``cfg``).
        models: if given, filled with each strategy's network as it trains (for inspection).
    """
    validate(cfg)
    stop = stop or threading.Event()
    device = resolve_device(cfg.device)
    if device.type == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    data = data or prepare_data(cfg, device)
    # Imports and reading the weight file (1-3 s, once per process) are no strategy's compute.
    warm_up(cfg.backbone, weights=any(STRATEGIES[s]["pretrained"] for s in cfg.strategies))
    runs = [_strategy_run(name, cfg, data, device, stop, models) for name in cfg.strategies]
    try:
        while runs:
            for run in list(runs):
                try:
                    yield next(run)
                except StopIteration:
                    runs.remove(run)
    except Cancelled:
        return
    finally:
        for run in runs:
            run.close()


def run_race(cfg: RunConfig, stop: threading.Event | None = None,
             on_event: Callable[[EpochResult], None] | None = None) -> dict:
    """Run a whole race and return the race JSON (config, device, wall seconds, epochs, summary)."""
    t0 = time.perf_counter()
    validate(cfg)
    device = resolve_device(cfg.device)
    data = prepare_data(cfg, device)
    events: list[EpochResult] = []
    for event in race(cfg, stop, data=data):
        events.append(event)
        if on_event:
            on_event(event)
    return {
        "config": cfg.to_dict(),
        "device": str(device),
        "wall_seconds": round(time.perf_counter() - t0, 3),
        "completed": len(events) == cfg.epochs * len(cfg.strategies),
        "skipped_images": data.skipped,  # unreadable files in a user's folder or zip
        "epochs": [e.to_dict() for e in events],
        "summary": summarize(events),
    }


def _strategy_run(name: str, cfg: RunConfig, data: RaceData, device: torch.device,
                  stop: threading.Event, models: dict | None = None) -> Iterator[EpochResult]:
    """One strategy from model building to the last epoch, yielding an EpochResult per epoch.

    The clock runs only while this generator runs, so ``seconds`` is this strategy's own compute,
    and the one-time work (building the model, caching frozen outputs) is charged to epoch 1.
    """
    t_epoch = time.perf_counter()
    strategy_seed = cfg.seed * 1000 + STRATEGY_NAMES.index(name)
    rng = RngStream(strategy_seed, device)
    shuffle = torch.Generator().manual_seed(strategy_seed)
    n_train = len(data.y_train)
    with rng:
        net = build(cfg.backbone, len(data.classes), pretrained=STRATEGIES[name]["pretrained"])
        net = net.to(device, memory_format=torch.channels_last)
        f = frozen_stages(name, cfg.frozen_stages)
        net.freeze(f)
        net.set_bn_momentum(STRATEGIES[name]["bn_momentum"])
        if models is not None:
            models[name] = net
        # Frozen stages never change, so run them once (with BatchNorm folded in: faster). With
        # augmentation the training images change every epoch and cannot be cached; the test set can.
        frozen_part = folded_copy(net) if f else net
        train_cache = None if cfg.augment else _cached_prefix(frozen_part, data.x_train, f, device, stop)
        test_cache = _cached_prefix(frozen_part, data.x_test, f, device, stop)
        groups = param_groups(net, name, cfg)
        # fused: one kernel for the whole update (CPU and CUDA); saves ~5 ms of every 200 ms step here.
        opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay, fused=device.type in ("cpu", "cuda") or None)
        batches = batch_sizes(n_train, cfg.batch_size)
        sched = warmup_cosine(opt, total_steps=cfg.epochs * len(batches))
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    total = sum(p.numel() for p in net.parameters())

    def train_input(idx: torch.Tensor) -> torch.Tensor:
        if train_cache is not None:
            return train_cache[idx]
        x = data.x_train[idx]
        return _prefix(frozen_part, augment(x, shuffle) if cfg.augment else x, f, device)

    cum = 0.0
    for epoch in range(1, cfg.epochs + 1):
        if epoch > 1:
            t_epoch = time.perf_counter()
        with rng:
            net.train()
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            perm = torch.randperm(n_train, generator=shuffle).to(device)
            t_train = time.perf_counter()
            for idx in torch.split(perm, batches):
                if stop.is_set():
                    raise Cancelled
                y = data.y_train[idx]
                with amp(device):
                    logits = net.forward_from(train_input(idx), f).float()
                    loss = F.cross_entropy(logits, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                loss_sum += loss.detach() * len(idx)
                correct += (logits.argmax(1) == y).sum()
            sync(device)
            train_seconds = time.perf_counter() - t_train
            if test_cache is None:
                test_loss, test_acc = _evaluate(net, data.x_test, data.y_test, 0, device)
            else:
                test_loss, test_acc = _evaluate(net, test_cache, data.y_test, f, device)
        sync(device)
        seconds = time.perf_counter() - t_epoch
        cum += seconds
        yield EpochResult(
            strategy=name, epoch=epoch,
            train_loss=float(loss_sum) / n_train, train_acc=float(correct) / n_train,
            test_loss=test_loss, test_acc=test_acc,
            trainable_params=trainable, total_params=total,
            seconds=seconds, cum_seconds=cum, images_per_s=n_train / max(train_seconds, 1e-9),
        )


def _prefix(net, x: torch.Tensor, f: int, device: torch.device) -> torch.Tensor:
    """Output of the ``f`` frozen stages (no graph: nothing before them learns)."""
    if f == 0:
        return x
    with torch.no_grad(), amp(device):
        return net.prefix(x, f).float()


def _cached_prefix(frozen_part, x: torch.Tensor, f: int, device: torch.device,
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


def _evaluate(net, x_in: torch.Tensor, y: torch.Tensor, start: int, device: torch.device) -> tuple[float, float]:
    """Test loss and accuracy in eval mode: BatchNorm uses its running statistics, folded into the convs."""
    net.eval()
    if start < NUM_STAGES:  # (a frozen backbone's test input is pooled features: only the head runs)
        net = folded_copy(net)
    loss = torch.zeros((), device=y.device)
    correct = torch.zeros((), device=y.device, dtype=torch.long)
    with torch.inference_mode(), amp(device):
        for i in range(0, len(y), EVAL_BATCH):
            logits = net.forward_from(x_in[i:i + EVAL_BATCH], start).float()
            loss += F.cross_entropy(logits, y[i:i + EVAL_BATCH], reduction="sum")
            correct += (logits.argmax(1) == y[i:i + EVAL_BATCH]).sum()
    n = len(y)
    return float(loss) / n, float(correct) / n if n else math.nan


