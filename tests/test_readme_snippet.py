"""The README's "take it home" snippet runs as written, with warnings as errors, and prints only the answer."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def readme_snippet() -> str:
    """The python block that loads a downloaded model (the one with ``torch.jit.load``)."""
    blocks = [b for b in BLOCK.findall((ROOT / "README.md").read_text()) if "torch.jit.load" in b]
    assert len(blocks) == 1, f"expected one model snippet in README.md, found {len(blocks)}"
    return blocks[0]


@pytest.mark.slow
def test_readme_model_snippet_runs_clean_with_warnings_as_errors(tmp_path):
    from tl_engine.inspect.export import export_torchscript
    from tl_engine.models import spec
    from tl_engine.models.backbones import build

    code = readme_snippet()
    model = re.search(r'torch\.jit\.load\("([^"]+)"\)', code).group(1)
    photo = re.search(r'Image\.open\("([^"]+)"\)', code).group(1)
    s = spec("mobilenet_v2")
    export_torchscript(build("mobilenet_v2", 3, pretrained=False), ["mug", "pen", "cup"], 32, s.mean, s.std,
                       tmp_path / model)
    shutil.copy(ROOT / "assets" / "images" / "chelsea.jpg", tmp_path / photo)  # a real photo, 451 x 300 JPEG
    (tmp_path / "snippet.py").write_text(code)
    out = subprocess.run([sys.executable, "-W", "error", "snippet.py"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stderr == "", out.stderr[-2000:]
    name, p = out.stdout.split()
    assert name in ("mug", "pen", "cup") and 1 / 3 <= float(p) <= 1.0


def test_the_old_snippet_would_have_failed():
    """The check can fail: ``np.asarray`` of a decoded image is read-only, which torch warns about."""
    import numpy as np
    from PIL import Image

    with Image.open(ROOT / "assets" / "images" / "chelsea.jpg") as im:
        assert not np.asarray(im.convert("RGB")).flags.writeable
        assert np.array(im.convert("RGB")).flags.writeable
    assert "np.asarray" not in readme_snippet()
