"""Build ``assets/probe/imagenet_probe.npz``: the fixed natural colour photos the forgetting measure runs on.

Run with ``.venv/bin/python scripts/build_probe.py`` (scikit-image from requirements-assets.txt; nothing is
downloaded). Six photos that ship inside scikit-image's wheel, 16 square crops of each (three sizes: the whole
short side, 70 % and 45 % of it, at positions drawn with a fixed seed), resized to 112 px with PIL's bilinear
filter: 96 uint8 RGB images, keys ``images`` (N x 112 x 112 x 3) and ``sources`` (the photo of each crop).
Deterministic: the npz writer stamps no dates, so running it twice gives a byte-identical file.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "assets" / "probe"
SIZE = 112
SEED = 20261207
PER_PHOTO = 16
# scikit-image name -> (what it shows, licence), as scikit-image's data/README states them
PHOTOS = {
    "astronaut": ("astronaut Eileen Collins, portrait", "public domain (NASA)"),
    "chelsea": ("Chelsea the cat", "CC0 (Stefan van der Walt)"),
    "coffee": ("a cup of coffee", "CC0 (Rachel Michetti)"),
    "rocket": ("a Falcon 9 rocket on its launch pad", "public domain (SpaceX)"),
    "motorcycle_left": ("a motorcycle (left view of a stereo pair)", "Middlebury 2014 stereo (Scharstein et al.)"),
    "motorcycle_right": ("the same motorcycle (right view)", "Middlebury 2014 stereo (Scharstein et al.)"),
}


def _photo(name: str) -> np.ndarray:
    import skimage.data as skd

    if name.startswith("motorcycle"):
        left, right, _ = skd.stereo_motorcycle()
        return left if name.endswith("left") else right
    return getattr(skd, name)()


def crops(img: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """``PER_PHOTO`` square crops: the whole short side, then 70 % and 45 % of it at random positions."""
    h, w = img.shape[:2]
    short = min(h, w)
    out = []
    for i in range(PER_PHOTO):
        side = int(short * (1.0 if i == 0 else 0.7 if i < 6 else 0.45))
        y = int(rng.integers(0, h - side + 1))
        x = int(rng.integers(0, w - side + 1))
        patch = Image.fromarray(img[y:y + side, x:x + side, :3])
        out.append(np.asarray(patch.resize((SIZE, SIZE), Image.BILINEAR), dtype=np.uint8))
    return out


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An uncompressed-header, deflated npz with fixed timestamps (np.savez stamps the current time)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for key, arr in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, member.getvalue())
    return buf.getvalue()


def main() -> None:
    rng = np.random.default_rng(SEED)
    images, sources = [], []
    for name in PHOTOS:
        for c in crops(_photo(name), rng):
            images.append(c)
            sources.append(name)
    data = _npz_bytes({"images": np.stack(images), "sources": np.array(sources)})
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "imagenet_probe.npz").write_bytes(data)
    import skimage

    rows = "\n".join(f"| {n} | {what} | {lic} |" for n, (what, lic) in PHOTOS.items())
    (OUT / "PROVENANCE.md").write_text(
        f"# The ImageNet probe photos\n\n`imagenet_probe.npz` (sha256 `{hashlib.sha256(data).hexdigest()}`): "
        f"{len(images)} crops, {SIZE} x {SIZE} RGB, of the photos below as they ship inside scikit-image "
        f"{skimage.__version__}, built by `scripts/build_probe.py` (its docstring says exactly how). The forgetting "
        "measure (`imagenet_agreement`, docs/pages.md) runs the original ImageNet head on these.\n\n"
        f"| scikit-image name | shows | licence |\n| --- | --- | --- |\n{rows}\n")
    print(f"wrote {OUT / 'imagenet_probe.npz'} ({len(data):,} bytes, {len(images)} images)")


if __name__ == "__main__":
    main()
