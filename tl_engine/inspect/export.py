"""Export a trained network as one TorchScript file that classifies a photo without this project.

The file holds a scripted wrapper around the traced network. Its ``forward`` takes ONE image as a uint8
tensor, H×W×3 (RGB) or H×W (grey), of any size, and returns the C class probabilities. Inside it does what
the race did to its images: centre-crop to a square, (grey races: convert RGB to grey with PIL's formula),
bilinear resize to the race resolution (antialiased when shrinking), normalise with the backbone's mean/std.
``m.classify(x)`` takes an already normalised float N×3×R×R batch and returns N×C probabilities.

What travels with the weights: attributes ``m.classes`` (list of names), ``m.resolution``, ``m.mean``,
``m.std``, ``m.grey``, and the same as JSON in the file's extra file ``meta.json``. Loading needs only torch::

    import warnings, numpy as np, torch
    from PIL import Image
    warnings.filterwarnings("ignore", "`torch.jit.load` is deprecated", FutureWarning)  # it still loads
    m = torch.jit.load("model.pt")
    probs = m(torch.from_numpy(np.array(Image.open("photo.jpg").convert("RGB"))))
    print(m.classes[int(probs.argmax())], float(probs.max()))

Note: torch 2.14 marks ``torch.jit`` as deprecated (FutureWarning) but still saves and loads these files;
the warnings are silenced here, where they are expected, and in the README's snippet (run with ``-W error`` by
tests/test_readme_snippet.py). ``np.array``, not ``np.asarray``: torch warns about a tensor of a read-only array.
"""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["export_torchscript", "load_exported"]

META_FILE = "meta.json"


class _Exported(nn.Module):
    """The scripted wrapper: preprocessing identical to :func:`tl_engine.data.bundled.to_model_input`, then softmax."""

    def __init__(self, net: torch.jit.ScriptModule, classes: Sequence[str], resolution: int,
                 mean: Sequence[float], std: Sequence[float], grey: bool):
        super().__init__()
        self.net = net
        self.classes = [str(c) for c in classes]
        self.resolution = int(resolution)
        self.mean = [float(v) for v in mean]
        self.std = [float(v) for v in std]
        self.grey = bool(grey)
        # (v / 255 - mean) / std == v * scale + shift: the same fused form (and rounding) as to_model_input.
        self.register_buffer("scale", torch.tensor([1 / (255 * s) for s in std], dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("shift", torch.tensor([-m / s for m, s in zip(mean, std)],
                                                   dtype=torch.float32).view(1, 3, 1, 1))

    @torch.jit.export
    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        """uint8 H×W×3 or H×W -> normalised float 1×3×R×R."""
        if image.dim() == 3 and self.grey:
            # PIL's "L" conversion in its own fixed-point arithmetic, so a photo gives the same grey as in PIL.
            rgb = image.to(torch.int32)
            image = ((rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000) >> 16).to(torch.uint8)
        if image.dim() == 2:
            image = image.unsqueeze(-1)
        h, w = image.shape[0], image.shape[1]
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2  # the same integer crop as inspect_models.prepare_image
        t = image[top:top + s, left:left + s].permute(2, 0, 1).unsqueeze(0).float()
        r = self.resolution
        if s != r:
            t = F.interpolate(t, size=[r, r], mode="bilinear", antialias=r < s, align_corners=False)
        return torch.addcmul(self.shift, t.expand(-1, 3, -1, -1), self.scale)

    @torch.jit.export
    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised float N×3×R×R -> N×C class probabilities."""
        return self.net(x).softmax(1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """One uint8 image, H×W×3 or H×W -> C class probabilities (in the order of ``self.classes``)."""
        return self.classify(self.preprocess(image))[0]


def export_torchscript(net: nn.Module, classes: Sequence[str], resolution: int, mean: Sequence[float],
                       std: Sequence[float], path: str | Path, grey: bool = False) -> Path:
    """Write ``net`` (a trained StagedNet) as a self-contained TorchScript file; returns the path.

    Args:
        grey: the race's images were greyscale; the exported model then turns colour photos grey first.

    The network is traced on a CPU float32 copy in eval mode (the original is not touched), so the file runs
    on any machine with torch; the wrapper around it is scripted (see the module docstring for its inputs).
    """
    if len(classes) == 0:
        raise ValueError("an exported model needs its class names")
    path = Path(path)
    twin = copy.deepcopy(net).cpu().float().eval().to(memory_format=torch.contiguous_format)
    twin.requires_grad_(False)  # inference only: outputs carry no autograd graph for the user to trip on
    example = torch.zeros(1, 3, int(resolution), int(resolution))
    meta = {"classes": [str(c) for c in classes], "resolution": int(resolution), "mean": [float(v) for v in mean],
            "std": [float(v) for v in std], "grey": bool(grey),
            "input": "forward: one uint8 image H×W×3 or H×W -> C probabilities; "
                     "classify: normalised float N×3×R×R -> N×C probabilities"}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit.*deprecated", category=FutureWarning)
        with torch.no_grad():
            traced = torch.jit.trace(twin, example)
        scripted = torch.jit.script(_Exported(traced, classes, resolution, mean, std, grey))
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.jit.save(scripted, str(path), _extra_files={META_FILE: json.dumps(meta)})
    return path


def load_exported(path: str | Path) -> tuple[torch.jit.ScriptModule, dict]:
    """The exported module and its ``meta.json`` (for tests; users call ``torch.jit.load`` directly)."""
    extra = {META_FILE: ""}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit.*deprecated", category=FutureWarning)
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    return module.eval(), json.loads(extra[META_FILE])
