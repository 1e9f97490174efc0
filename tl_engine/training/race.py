"""The race: the strategies trained side by side, one epoch each in turn.

Reading order: :class:`Race` (what everything else consumes: iterate it for epochs, then ask it for the
result) -> :mod:`tl_engine.training.strategy_run` (one strategy's life: build once, then one epoch at a time).

Fair by construction ("paired"): every strategy of a race sees the same images in the same order and starts
with the same head weights, because its random streams depend on the seed alone, not on the strategy. So a
strategy's curve does not depend on who races beside it, and fine-tune at k = 7 *is* the frozen strategy.

Why it is fast on a 2-core CPU:
- the dataset is preprocessed once into a normalised tensor (no per-epoch PIL work);
- frozen stages are deterministic, so their output is computed once and cached; the frozen strategy then
  trains a linear head on pooled features, and fine-tune runs only its unfrozen stages each epoch (with
  augmentation on, the *training* images change every epoch, so their frozen prefix is recomputed per batch
  under no_grad; validation and test stay cached);
- channels_last memory format, the CPUs this process may use, bf16 autocast on CUDA.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import torch

from ..config import EpochResult, RaceResult, RunConfig
from ..data import ImageSet, load_dataset, split_balanced, to_model_input
from ..models import SPECS, STRATEGIES, StagedNet, merge_lora, warm_up
from .checks import validate
from .forgetting import Forgetting, measured
from .machine import usable_cpus
from .strategy_run import Cancelled, RaceData, inspect_strategy, setup_strategy, train_epoch
from .torchutil import resolve_device

__all__ = ["Race", "RaceData", "Cancelled", "prepare_data", "race", "run_race"]


def prepare_data(cfg: RunConfig, device: torch.device, ds: ImageSet | None = None) -> RaceData:
    """Draw the class-balanced splits and preprocess them once for the whole race.

    ``ds``: the dataset when the caller has already decoded it (an upload is decoded once, not per race).
    """
    ds = ds if ds is not None else load_dataset(cfg.dataset)
    sp = split_balanced(ds, cfg.train_size, cfg.test_size, cfg.seed, val_size=cfg.val_size)
    bspec = SPECS[cfg.backbone]

    def prep(x) -> torch.Tensor:
        return to_model_input(x, cfg.resolution, bspec.mean, bspec.std).to(device, memory_format=torch.channels_last)

    def labels(y) -> torch.Tensor:
        return torch.as_tensor(y, device=device)

    return RaceData(prep(sp.train_x), labels(sp.train_y), prep(sp.val_x), labels(sp.val_y), prep(sp.test_x),
                    labels(sp.test_y), tuple(ds.info.classes), ds.skipped, tuple(ds.skipped_reasons),
                    grey=ds.train_x.ndim == 3)


class Race:
    """One race. Iterate it for :class:`EpochResult` records (round-robin, one epoch of each strategy in
    turn, so a UI can draw the curves racing); then :meth:`result` is the race's :class:`RaceResult`.

    Setting ``stop`` (from any thread) ends the race between two batches; epochs already yielded stay
    valid, nothing half-finished is yielded. With ``keep_models`` the trained networks stay in
    :attr:`models` (for the look-inside views and export); otherwise they are dropped after each strategy's
    last epoch.
    """

    def __init__(self, cfg: RunConfig, stop: threading.Event | None = None, data: RaceData | None = None,
                 keep_models: bool = False, threads: int | None = None):
        validate(cfg)
        self.cfg, self.stop = cfg, stop or threading.Event()
        self.device = resolve_device(cfg.device)
        self.threads = threads or usable_cpus()
        self._data = data
        self.keep_models = keep_models
        self.events: list[EpochResult] = []
        self.details: dict[str, dict] = {}  # strategy -> confusion matrix, per-class accuracy, Δθ, predictions
        self.models: dict[str, StagedNet] = {}
        self._forgetting: Forgetting | None = None  # the untouched network's probe labels, made on first use
        self.started = time.perf_counter()

    @property
    def data(self) -> RaceData:
        if self._data is None:
            self._data = prepare_data(self.cfg, self.device)
        return self._data

    def __iter__(self) -> Iterator[EpochResult]:
        if self.device.type == "cpu":
            # Never more threads than the cores this process may use: oversubscribed OpenMP threads make
            # every job ten times slower, not two (measured on this project's 2-core machine).
            torch.set_num_threads(self.threads)
        data = self.data
        # Imports and reading the weight file (1-3 s, once per process) are no strategy's compute.
        warm_up(self.cfg.backbone, weights=any(STRATEGIES[s].pretrained for s in self.cfg.strategies))
        runs = [self._strategy(name, data) for name in self.cfg.strategies]
        try:
            while runs:
                for run in list(runs):
                    try:
                        event = next(run)
                    except StopIteration:
                        runs.remove(run)
                        continue
                    self.events.append(event)
                    yield event
        except Cancelled:
            return
        finally:
            for run in runs:
                run.close()

    def _strategy(self, name: str, data: RaceData) -> Iterator[EpochResult]:
        """One strategy from model building to its last epoch; keeps what the look-inside views need."""
        t0 = time.perf_counter()  # building and caching are charged to epoch 1
        run = setup_strategy(name, self.cfg, data, self.device, self.stop)
        for ep in range(1, self.cfg.epochs + 1):
            event = train_epoch(run, ep, data, self.device, self.stop, t0)
            if ep == self.cfg.epochs:
                self.details[name] = inspect_strategy(run, data)
                if measured(name):  # not charged to the racer's clock: no racer pays for the measuring
                    self._forgetting = self._forgetting or Forgetting(self.cfg, self.device)
                    agree, noise = self._forgetting.agreement(run.net)
                    own, _ = self._forgetting.agreement(run.net, own_stats=True)
                    self.details[name] |= {"imagenet_agreement": agree, "imagenet_agreement_noise": noise,
                                           "imagenet_agreement_own_stats": own}
                if self.keep_models:
                    self.models[name] = merge_lora(run.net).eval()  # adapters folded in: a plain network
            yield event
            t0 = time.perf_counter()

    def result(self) -> RaceResult:
        """The race so far (complete or stopped), with the wall time since it was created."""
        data = self._data
        return RaceResult.build(self.cfg, str(self.device), time.perf_counter() - self.started, self.events,
                                data.skipped if data else 0, data.classes if data else (), self.details)


def race(cfg: RunConfig, stop: threading.Event | None = None, data: RaceData | None = None
         ) -> Iterator[EpochResult]:
    """Just the epochs of a :class:`Race` (for callers that need nothing else)."""
    yield from Race(cfg, stop, data)


def run_race(cfg: RunConfig, stop: threading.Event | None = None,
             on_event: Callable[[EpochResult], None] | None = None, data: RaceData | None = None) -> RaceResult:
    """Run a whole race (or until ``stop``) and return its result."""
    r = Race(cfg, stop, data)
    for event in r:
        if on_event:
            on_event(event)
    return r.result()
