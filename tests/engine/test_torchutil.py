"""The small torch helpers: BatchNorm folding, the lr schedule, augmentation, batching, CPU count."""

from __future__ import annotations

import math
import os

import pytest
import torch
from torch import nn

from tl_engine.errors import WeightsMissingError
from tl_engine.models import backbones as B
from tl_engine.training.machine import usable_cpus
from tl_engine.training.torchutil import augment, batch_sizes, folded_copy, warmup_cosine

BATCHNORMS = nn.modules.batchnorm._BatchNorm


def _scramble_batchnorms(net: nn.Module, seed: int = 0) -> None:
    """Give every BatchNorm non-trivial statistics and affine weights.

    A fresh BatchNorm (mean 0, var 1, weight 1, bias 0) is nearly the identity, so folding it into
    the wrong conv would go unnoticed; with these, any fold that disagrees with the forward order shows.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, BATCHNORMS):
                c = m.num_features
                m.running_mean.copy_(0.1 * torch.randn(c, generator=gen))
                m.running_var.copy_(0.5 + 1.5 * torch.rand(c, generator=gen))
                m.weight.copy_(0.5 + torch.rand(c, generator=gen))
                m.bias.copy_(0.1 * torch.randn(c, generator=gen))


def _net(name: str, pretrained: bool) -> B.StagedNet:
    if not pretrained:
        net = B.build(name, 10, pretrained=False)
        _scramble_batchnorms(net)
        return net.eval()
    try:
        return B.build(name, 10).eval()
    except WeightsMissingError as e:
        pytest.skip(f"ImageNet weights not installed: {e}")


def _assert_same(fast: torch.Tensor, ref: torch.Tensor) -> None:
    # Tolerance relative to the output's scale: folding changes only float rounding.
    scale = ref.abs().max().item()
    torch.testing.assert_close(fast, ref, rtol=1e-4, atol=1e-4 * max(1.0, scale))


@pytest.mark.slow  # builds both real networks four times
@pytest.mark.parametrize("pretrained", [False, True], ids=["random", "imagenet"])
@pytest.mark.parametrize("name", list(B.SPECS))
def test_folded_copy_removes_every_batchnorm_and_keeps_the_outputs(name, pretrained):
    """Both backbones fold completely (timm's BatchNormAct2d included), whole net and a stage prefix.

    Equal outputs with scrambled BatchNorms also prove that each block registers its layers in
    forward order, which is what folding "BatchNorm into the preceding sibling conv" relies on.
    """
    net = _net(name, pretrained)
    n_bn = sum(isinstance(m, BATCHNORMS) for m in net.modules())
    fast = folded_copy(net)
    assert fast is not net
    assert not any(isinstance(m, BATCHNORMS) for m in fast.modules())
    assert sum(isinstance(m, BATCHNORMS) for m in net.modules()) == n_bn > 0  # the original is untouched
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        _assert_same(fast(x), net(x))
        _assert_same(fast.prefix(x, 3), net.prefix(x, 3))
        xc = x.contiguous(memory_format=torch.channels_last)  # the layout the engine runs in
        _assert_same(fast.forward_from(net.prefix(xc, 2), 2), net(xc))


def test_folded_copy_is_an_eval_copy_that_leaves_the_original_alone():
    net = B.build("mobilenet_v2", 10, pretrained=False)
    net.freeze(2)
    net.train()
    fast = folded_copy(net)
    assert net.training and not fast.training and not any(m.training for m in fast.modules())
    original = {id(p) for p in net.parameters()} | {p.data_ptr() for p in net.parameters()}
    assert not any(id(p) in original or p.data_ptr() in original for p in fast.parameters())
    assert fast.n_frozen == 2


@pytest.mark.parametrize("module", [
    nn.Sequential(nn.Linear(4, 4), nn.ReLU()),  # no BatchNorm at all (e.g. a head)
    nn.Sequential(nn.ReLU(), nn.BatchNorm2d(3)),  # BatchNorm after something that is not a conv
    nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3, track_running_stats=False)),  # no fixed statistics
    nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm1d(3)),  # not a 2-d BatchNorm
])
def test_folded_copy_returns_the_module_itself_when_nothing_folds(module):
    """No deep copy for nothing: the very same object comes back, mode and all."""
    module.train()
    assert folded_copy(module) is module
    assert module.training


def test_folded_copy_folds_a_plain_conv_batchnorm_pair_in_a_custom_block():
    """Attribute-style blocks (not Sequential) fold too, registration order standing for forward order."""

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 5, 3, padding=1)
            self.bn = nn.BatchNorm2d(5)
            self.act = nn.ReLU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.act(self.bn(self.conv(x)))

    block = Block()
    _scramble_batchnorms(block)
    block.eval()
    fast = folded_copy(block)
    assert isinstance(fast.bn, nn.Identity)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        _assert_same(fast(x), block(x))


def _lrs(total: int, lrs: tuple[float, ...] = (0.1, 0.003)) -> list[list[float]]:
    """The lr each group trains with at steps 0..total-1."""
    params = [nn.Parameter(torch.zeros(1)) for _ in lrs]
    opt = torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, lrs)])
    sched = warmup_cosine(opt, total_steps=total)
    seen = []
    for _ in range(total):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    return seen


@pytest.mark.parametrize("total", [1, 2, 3, 7, 1000])
def test_warmup_cosine_rises_peaks_at_the_group_lr_then_decays(total):
    seen = _lrs(total)
    for g, peak in enumerate((0.1, 0.003)):
        lr = [s[g] for s in seen]
        top = lr.index(max(lr))
        assert max(lr) == pytest.approx(peak)  # every group peaks at its own lr
        assert all(0 < v <= peak * (1 + 1e-9) for v in lr)  # never zero (a wasted step), never above
        warm = max(1, round(total / 4))
        assert top == warm - 1  # the peak ends the first quarter
        for s in range(warm):  # linear rise
            assert lr[s] == pytest.approx(peak * (s + 1) / warm)
        assert all(a > b for a, b in zip(lr[top:], lr[top + 1:]))  # then strictly down


def test_warmup_cosine_ends_near_zero_on_a_long_run():
    lr = [s[0] for s in _lrs(1000)]
    assert lr[0] == pytest.approx(0.1 / 250)
    assert lr[500] == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 251 / 751)))  # cosine, not linear
    assert lr[-1] < 1e-4 * 0.1


def test_augment_keeps_shape_and_layout_and_follows_its_generator():
    x = torch.rand(6, 3, 24, 24).contiguous(memory_format=torch.channels_last)
    a = augment(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert a.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(augment(x, torch.Generator().manual_seed(0)), a, rtol=0, atol=0)
    assert not torch.equal(augment(x, torch.Generator().manual_seed(1)), a)
    assert not torch.equal(a, x)


def test_augment_shifts_and_zooms_within_the_documented_range():
    """Shift: at most ±0.125 in [-1, 1] coordinates (±6.25% of the size); zoom 0.9-1.1, same on both axes.

    The input holds each pixel's own x and y coordinate, so the output says exactly where every pixel
    was sampled from: ``source = position / zoom + shift``. Bilinear sampling of a linear ramp is exact.
    """
    n, size = 2000, 32
    centres = (2 * torch.arange(size) + 1) / size - 1  # pixel centres, align_corners=False
    ramp_x = centres.expand(size, size)
    x = torch.stack([ramp_x, ramp_x.T, torch.zeros(size, size)]).expand(n, 3, size, size).contiguous()
    out = augment(x, torch.Generator().manual_seed(0))
    mid = slice(size // 4, size - size // 4)  # |position| <= 0.5: never sampled past the border
    pos = centres[mid]
    fits = {}
    for axis, profile in (("x", out[:, 0, size // 2, mid]), ("y", out[:, 1, mid, size // 2])):
        dp = pos - pos.mean()  # least-squares line through each image's profile
        slope = ((profile - profile.mean(1, keepdim=True)) * dp).sum(1) / (dp**2).sum()
        shift = profile.mean(1) - slope * pos.mean()
        fits[axis] = (1 / slope, shift)
    zoom_x, shift_x = fits["x"]
    zoom_y, shift_y = fits["y"]
    torch.testing.assert_close(zoom_x, zoom_y)  # isotropic zoom
    assert zoom_x.min() >= 0.9 - 1e-4 and zoom_x.max() <= 1.1 + 1e-4
    assert zoom_x.min() < 0.91 and zoom_x.max() > 1.09  # the whole range is used
    for shift in (shift_x, shift_y):
        assert shift.abs().max() <= 0.125 + 1e-4
        assert shift.abs().max() > 0.12  # ... up to its edge
        assert abs(shift.mean()) < 0.01  # and centred
    assert (shift_x - shift_y).abs().max() > 0.05  # x and y shift independently


@pytest.mark.parametrize("n, size, expected", [
    (0, 4, []),
    (1, 4, [1]),
    (5, 8, [5]),
    (8, 4, [4, 4]),
    (10, 4, [4, 4, 2]),
    (9, 4, [4, 5]),  # a last batch of one would break BatchNorm: merged into the one before
    (17, 8, [8, 9]),
    (3, 2, [3]),  # exactly two batches, the second of one image
    (65, 64, [65]),
])
def test_batch_sizes(n, size, expected):
    assert batch_sizes(n, size) == expected


def test_batch_sizes_cover_every_image_in_batches_of_at_least_two():
    for n in range(2, 60):
        for size in range(2, 12):
            sizes = batch_sizes(n, size)
            assert sum(sizes) == n
            assert all(2 <= s <= size + 1 for s in sizes)
            assert len(sizes) == max(1, math.ceil(n / size) - (n % size == 1))


def test_usable_cpus_counts_the_affinity_mask(monkeypatch):
    if hasattr(os, "sched_getaffinity"):
        assert usable_cpus() == len(os.sched_getaffinity(0))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert usable_cpus() == 1  # pinned to one core of a 64-core host: one thread, not 64


def test_usable_cpus_falls_back_to_cpu_count(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert usable_cpus() == 6
    monkeypatch.setattr(os, "cpu_count", lambda: None)  # "undeterminable"
    assert usable_cpus() == 1
