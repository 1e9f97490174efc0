"""The same race, written the way the PyTorch transfer-learning tutorial does it.

This is the baseline the engine is measured against. It keeps the tutorial's habits on purpose:
a ``Dataset`` that builds a PIL image and runs torchvision transforms per item, a ``DataLoader``,
the whole network run forward every epoch (frozen layers included), default memory format,
``model.train()`` on the whole model, and the strategies trained one after another.

What it shares with the engine, so that only the implementation differs: the same images
(same class-balanced split), the same resolution, batch size, optimizer (AdamW), learning rates
and one-cycle schedule, and the same torchvision weights, loaded the tutorial's way
(``mobilenet_v2(weights=...)`` from ``$TORCH_HOME``, where we copy the shipped file).
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

from tl_engine.backbones import SPECS, weight_path
from tl_engine.config import RunConfig
from tl_engine.data import load_dataset, split_balanced
from tl_engine.strategies import STRATEGIES
from tl_engine.train import warmup_cosine

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


def _model(strategy: str, num_classes: int, k: int) -> nn.Module:
    if strategy == "scratch":
        return models.mobilenet_v2(weights=None, num_classes=num_classes)
    os.environ["TORCH_HOME"] = _offline_torch_home()
    model = models.mobilenet_v2(weights=models.MobileNet_V2_Weights.IMAGENET1K_V1)
    frozen = 7 if strategy == "frozen" else k
    for p in model.features[: STAGE_CUTS[frozen]].parameters():
        p.requires_grad = False
    model.classifier[1] = nn.Linear(model.last_channel, num_classes)
    return model


def textbook_race(cfg: RunConfig, log=print) -> dict:
    """Run scratch, frozen, fine-tune one after another; return per-strategy epochs and totals."""
    assert cfg.backbone == "mobilenet_v2", "the textbook baseline is written for torchvision's MobileNetV2"
    torch.manual_seed(cfg.seed)
    ds = load_dataset(cfg.dataset)
    xtr, ytr, xte, yte = split_balanced(ds, cfg.train_size, cfg.test_size, cfg.seed)
    spec = SPECS[cfg.backbone]
    tf = transforms.Compose([transforms.Resize((cfg.resolution, cfg.resolution)), transforms.ToTensor(),
                             transforms.Normalize(spec.mean, spec.std)])
    train_loader = DataLoader(ArrayImages(xtr, ytr, tf), batch_size=cfg.batch_size, shuffle=True, num_workers=0)
    test_loader = DataLoader(ArrayImages(xte, yte, tf), batch_size=cfg.batch_size, shuffle=False, num_workers=0)
    out: dict[str, dict] = {}
    for strategy in cfg.strategies:
        t0 = time.perf_counter()
        model = _model(strategy, len(ds.info.classes), cfg.frozen_stages)
        if strategy == "scratch":  # the engine's BatchNorm setting for scratch (see tl_engine/strategies.py)
            for m in model.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.momentum = STRATEGIES["scratch"]["bn_momentum"]
        head = list(model.classifier.parameters())
        body = [p for p in model.features.parameters() if p.requires_grad]
        body_lr = cfg.lr_scratch if strategy == "scratch" else cfg.lr_body
        head_lr = cfg.lr_scratch if strategy == "scratch" else cfg.lr_head
        groups = [{"params": head, "lr": head_lr}] + ([{"params": body, "lr": body_lr}] if body else [])
        opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
        sched = warmup_cosine(opt, total_steps=cfg.epochs * len(train_loader))
        epochs = []
        for epoch in range(1, cfg.epochs + 1):
            model.train()
            for inputs, labels in train_loader:
                opt.zero_grad()
                loss = F.cross_entropy(model(inputs), labels)
                loss.backward()
                opt.step()
                sched.step()
            model.eval()
            correct = 0
            with torch.no_grad():
                for inputs, labels in test_loader:
                    correct += (model(inputs).argmax(1) == labels).sum().item()
            now = time.perf_counter()
            epochs.append({"epoch": epoch, "test_acc": correct / len(yte), "cum_seconds": now - t0})
            log(f"textbook {strategy:>8} epoch {epoch:>2}  test acc {correct / len(yte):6.1%}  {now - t0:6.1f}s")
        out[strategy] = {"epochs": epochs, "final_test_acc": epochs[-1]["test_acc"],
                         "compute_seconds": epochs[-1]["cum_seconds"]}
    return out
