"""The same race, written the way the PyTorch transfer-learning tutorial does it.

This is the baseline the engine is measured against. It keeps the tutorial's habits on purpose:
a ``Dataset`` that builds a PIL image and runs torchvision transforms per item, a ``DataLoader``,
the whole network run forward every epoch (frozen layers included), default memory format,
``model.train()`` on the whole model, and the strategies trained one after another.

What it shares with the engine, so that only the implementation differs: the same images (the same
class-balanced train / validation / test draw), the same resolution, batch size, optimizer (AdamW), learning
rates and warm-up + cosine schedule, the same BatchNorm momentum for scratch, the same work per epoch
(train, then score validation and test), and the same torchvision weights, loaded the tutorial's way
(``mobilenet_v2(weights=...)`` from ``$TORCH_HOME``, where we copy the shipped file). Paired like the engine:
every strategy shuffles with a generator seeded by ``cfg.seed`` alone and starts from the same new head.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import models, transforms

from tl_engine.config import RunConfig
from tl_engine.data import load_dataset, split_balanced
from tl_engine.models import SPECS, STRATEGIES, weight_path
from tl_engine.training import warmup_cosine

STAGE_CUTS = [0, 2, 4, 7, 11, 14, 17, 19]  # MobileNetV2 `features` indices of the seven stages


class ArrayImages(Dataset):
    """uint8 arrays served as PIL images through torchvision transforms, one item at a time."""

    def __init__(self, x: np.ndarray, y: np.ndarray, tf):
        self.x, self.y, self.tf = x, y, tf

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        img = Image.fromarray(self.x[i]).convert("RGB")
        return self.tf(img), int(self.y[i])


def _offline_torch_home() -> str:
    """Make ``weights=IMAGENET1K_V1`` work offline: put the shipped file where torchvision looks."""
    home = Path(tempfile.gettempdir()) / "tl-race-torch-home"
    target = home / "hub" / "checkpoints" / "mobilenet_v2-b0353104.pth"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(weight_path(SPECS["mobilenet_v2"]), target)
    return str(home)


def _model(strategy: str, num_classes: int, k: int, seed: int) -> nn.Module:
    if STRATEGIES[strategy].pretrained:
        os.environ["TORCH_HOME"] = _offline_torch_home()
        model = models.mobilenet_v2(weights=models.MobileNet_V2_Weights.IMAGENET1K_V1)
    else:
        model = models.mobilenet_v2(weights=None)
    frozen = STRATEGIES[strategy].frozen_stages(k)
    for p in model.features[: STAGE_CUTS[frozen]].parameters():
        p.requires_grad = False
    torch.manual_seed(seed)  # paired: the same new head for every strategy
    model.classifier[1] = nn.Linear(model.last_channel, num_classes)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = STRATEGIES[strategy].bn_momentum
    return model


def _score(model: nn.Module, loader: DataLoader) -> float:
    correct = n = 0
    with torch.no_grad():
        for inputs, labels in loader:
            correct += (model(inputs).argmax(1) == labels).sum().item()
            n += len(labels)
    return correct / max(n, 1)


def textbook_race(cfg: RunConfig, log=print) -> dict:
    """Run the strategies one after another; per strategy its epochs (test/val accuracy, train and eval
    seconds, cumulative compute seconds) and totals."""
    assert cfg.backbone == "mobilenet_v2", "the textbook baseline is written for torchvision's MobileNetV2"
    ds = load_dataset(cfg.dataset)
    sp = split_balanced(ds, cfg.train_size, cfg.test_size, cfg.seed, val_size=cfg.val_size)
    spec = SPECS[cfg.backbone]
    tf = transforms.Compose([transforms.Resize((cfg.resolution, cfg.resolution)), transforms.ToTensor(),
                             transforms.Normalize(spec.mean, spec.std)])
    val_loader = DataLoader(ArrayImages(sp.val_x, sp.val_y, tf), batch_size=cfg.batch_size, num_workers=0)
    test_loader = DataLoader(ArrayImages(sp.test_x, sp.test_y, tf), batch_size=cfg.batch_size, num_workers=0)
    out: dict[str, dict] = {}
    for strategy in cfg.strategies:
        t0 = time.perf_counter()
        train_loader = DataLoader(ArrayImages(sp.train_x, sp.train_y, tf), batch_size=cfg.batch_size, shuffle=True,
                                  num_workers=0, generator=torch.Generator().manual_seed(cfg.seed))
        model = _model(strategy, len(ds.info.classes), cfg.frozen_stages, cfg.seed)
        head = list(model.classifier.parameters())
        body = [p for p in model.features.parameters() if p.requires_grad]
        pretrained = STRATEGIES[strategy].pretrained
        body_lr = cfg.lr_body if pretrained else cfg.lr_scratch
        head_lr = cfg.lr_head if pretrained else cfg.lr_scratch
        groups = [{"params": head, "lr": head_lr}] + ([{"params": body, "lr": body_lr}] if body else [])
        opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
        sched = warmup_cosine(opt, total_steps=cfg.epochs * len(train_loader))
        epochs = []
        for epoch in range(1, cfg.epochs + 1):
            t_start = t0 if epoch == 1 else time.perf_counter()  # model building is charged to epoch 1
            model.train()
            for inputs, labels in train_loader:
                opt.zero_grad()
                loss = F.cross_entropy(model(inputs), labels)
                loss.backward()
                opt.step()
                sched.step()
            t_eval = time.perf_counter()
            model.eval()
            val_acc, test_acc = _score(model, val_loader), _score(model, test_loader)
            now = time.perf_counter()
            epochs.append({"epoch": epoch, "test_acc": test_acc, "val_acc": val_acc, "train_seconds": t_eval - t_start,
                           "eval_seconds": now - t_eval, "cum_seconds": now - t0})
            log(f"textbook {strategy:>8} epoch {epoch:>2}  test acc {test_acc:6.1%}  {now - t0:6.1f}s")
        out[strategy] = {"epochs": epochs, "final_test_acc": epochs[-1]["test_acc"],
                         "epoch1_test_acc": epochs[0]["test_acc"],
                         "train_seconds": sum(e["train_seconds"] for e in epochs),
                         "eval_seconds": sum(e["eval_seconds"] for e in epochs),
                         "compute_seconds": epochs[-1]["cum_seconds"]}
    return out
