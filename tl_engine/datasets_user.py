"""The user's own images: a folder or .zip of class sub-folders, or a MedMNIST-style .npz.

Folders and zips are read the same way: one sub-folder per class (``cats/``, ``dogs/``...), images of any size
and mode. If the top level is split into ``train/`` and ``test/`` (or ``val/``), those splits are used as given;
otherwise each class is split 80/20 with a fixed seed. Every image is centre-cropped to a square and resized to
STORE_SIZE at load time, so the whole set is one uint8 array; colour is kept if any image has colour. Zips are
read from memory, entry by entry, and never extracted.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

from .data import DatasetInfo, ImageSet
from .errors import DataError

STORE_SIZE = 128  # pixels; larger than any resolution a CPU race uses, small enough for thousands of images
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
TEST_DIRS = ("test", "val", "valid", "validation")  # first found is the test split; "val" joins train if both
SPLIT_SEED = 0
MAX_ZIP_BYTES = 4 * 2**30  # refuse zips that would unpack to more than this (zip bombs)
NPZ_KEYS = ("train_images", "train_labels", "test_images", "test_labels")

Entries = dict[tuple[str, ...], Callable[[], bytes]]  # path parts below the root -> reads that file's bytes


def load_path(path: Path) -> ImageSet:
    """Load a folder, a .zip or a .npz (see the module docstring)."""
    if path.is_dir():
        return from_entries(_folder_entries(path), path.name, str(path))
    suffix = path.suffix.lower()
    if suffix == ".zip":
        return load_zip(path, path.stem, str(path))
    if suffix == ".npz":
        return load_npz(path, path.stem, str(path))
    raise DataError(f"{path} is not a folder, .zip or .npz. Put one sub-folder of images per class in a folder "
                    "or a .zip, or save arrays as a MedMNIST-style .npz.")


def load_upload(filename: str, data: bytes) -> ImageSet:
    """Load an uploaded .zip or .npz from its bytes (the app's file uploader)."""
    suffix, stem = Path(filename).suffix.lower(), Path(filename).stem
    if suffix == ".zip":
        return load_zip(io.BytesIO(data), stem, filename)
    if suffix == ".npz":
        return load_npz(io.BytesIO(data), stem, filename)
    raise DataError(f"{filename}: upload a .zip of class folders or a MedMNIST-style .npz.")


def _folder_entries(root: Path) -> Entries:
    return {p.relative_to(root).parts: p.read_bytes for p in sorted(root.rglob("*")) if p.is_file()}


def load_zip(src: Path | BinaryIO, name: str, source: str) -> ImageSet:
    """Load a .zip of class folders without extracting it; unsafe entry names are refused."""
    try:
        zf = zipfile.ZipFile(src)
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"{source} is not a readable .zip file ({e}).") from e
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        for i in zf.infolist():
            parts = PurePosixPath(i.filename.replace("\\", "/")).parts
            # An absolute name or a ".." would point outside the archive if anyone ever extracted it: refuse.
            if i.filename.startswith(("/", "\\")) or ".." in parts or (parts and parts[0].endswith(":")):
                raise DataError(f"{source} contains an unsafe entry {i.filename!r} (absolute path or '..'); "
                                "make the zip again from inside the dataset folder.")
        if sum(i.file_size for i in infos) > MAX_ZIP_BYTES:
            raise DataError(f"{source} unpacks to more than {MAX_ZIP_BYTES // 2**30} GB; use a smaller dataset.")
        entries: Entries = {PurePosixPath(i.filename).parts: (lambda i=i: zf.read(i)) for i in infos}
        return from_entries(entries, name, source)


# --- class folders -> ImageSet ----------------------------------------------------------------------------


def from_entries(entries: Entries, name: str, source: str) -> ImageSet:
    """Build an ImageSet from files keyed by their path parts (shared by folders and zips)."""
    # Skip hidden files and macOS resource forks; only image extensions count.
    files = {p: r for p, r in entries.items()
             if not any(s.startswith(".") or s == "__MACOSX" for s in p) and Path(p[-1]).suffix.lower() in IMAGE_EXTS}
    # A zip of a folder wraps everything in that folder: look inside single wrapper folders.
    while files and len({p[0] for p in files}) == 1 and all(len(p) >= 3 for p in files):
        files = {p[1:]: r for p, r in files.items()}
    tops = {p[0].lower(): p[0] for p in files if len(p) >= 3}
    test_dir = next((tops[d] for d in TEST_DIRS if d in tops), None)
    if "train" in tops and test_dir:
        # Given splits; a "val" next to a "test" is more training data.
        train_dirs = {tops["train"]} | {tops[d] for d in TEST_DIRS if d in tops and tops[d] != test_dir}
        train = _by_class(files, train_dirs)
        test = _by_class(files, {test_dir})
        missing = sorted(set(train) ^ set(test))
        if missing:
            raise DataError(f"{source}: class folders {missing} are in only one of train/ and {test_dir}/; "
                            "both splits need the same class folders.")
    else:
        train, test = _by_class(files, None), {}
    classes = sorted(train, key=str.lower)
    if len(classes) < 2:
        raise DataError(f"{source} has {len(classes)} class folder(s) with images ({', '.join(classes) or 'none'}); "
                        "a classifier needs at least 2: put each class's images in its own sub-folder.")
    skipped = 0
    decoded: dict[str, dict[str, list]] = {"train": {}, "test": {}}
    for split, groups in (("train", train), ("test", test)):
        for c, readers in groups.items():
            images = [_decode(_read(r)) for r in readers]
            skipped += sum(im is None for im in images)
            decoded[split][c] = [im for im in images if im is not None]
            if not decoded[split][c]:
                where = f"{split}/{c}" if test else c
                raise DataError(f"{source}: class folder {where!r} has no readable images "
                                f"({len(readers)} file(s) could not be opened); add png/jpg images or remove it.")
    if not test:
        decoded = _split_80_20(decoded["train"], source)
    colour = any(im.ndim == 3 for split in decoded.values() for ims in split.values() for im in ims)
    arrays = [_stack(decoded[s], classes, colour) for s in ("train", "test")]
    (x, y), (tx, ty) = arrays
    info = DatasetInfo(name, name, f"your images ({source})", "unknown", len(y), len(ty), tuple(classes),
                       "yours", source)
    return ImageSet(info, x, y, tx, ty, skipped)


def _by_class(files: Entries, split_dirs: set[str] | None) -> dict[str, list[Callable[[], bytes]]]:
    """Readers per class folder, either at the top level (split_dirs None) or below the given split folders."""
    groups: dict[str, list] = {}
    for parts, read in files.items():
        if split_dirs is not None:
            if parts[0] not in split_dirs:
                continue
            parts = parts[1:]
        if len(parts) >= 2:  # files lying next to the class folders are not in any class
            groups.setdefault(parts[0], []).append(read)
    return groups


def _split_80_20(groups: dict[str, list[np.ndarray]], source: str) -> dict[str, dict[str, list]]:
    rng = np.random.default_rng(SPLIT_SEED)
    out: dict[str, dict[str, list]] = {"train": {}, "test": {}}
    for c, ims in groups.items():
        if len(ims) < 2:
            raise DataError(f"{source}: class {c!r} has only {len(ims)} readable image; each class needs at least "
                            "2 (some to train on, some to test on).")
        order = rng.permutation(len(ims))
        n_test = min(len(ims) - 1, max(1, round(0.2 * len(ims))))
        out["test"][c] = [ims[i] for i in order[:n_test]]
        out["train"][c] = [ims[i] for i in order[n_test:]]
    return out


def _stack(groups: dict[str, list[np.ndarray]], classes: list[str], colour: bool) -> tuple[np.ndarray, np.ndarray]:
    ims = [im for c in classes for im in groups[c]]
    if colour:
        ims = [im if im.ndim == 3 else np.repeat(im[..., None], 3, axis=2) for im in ims]
    y = np.concatenate([np.full(len(groups[c]), i, np.int64) for i, c in enumerate(classes)])
    return np.stack(ims), y


def _read(reader: Callable[[], bytes]) -> bytes:
    # A damaged or password-protected zip entry, or an unreadable file, counts as one skipped image.
    try:
        return reader()
    except (OSError, RuntimeError, zipfile.BadZipFile, zlib.error):
        return b""


def _decode(data: bytes, size: int = STORE_SIZE) -> np.ndarray | None:
    """One image file -> uint8 size×size (grey) or size×size×3 (colour), centre square crop; None if unreadable."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.draft(None, (size, size))  # JPEG: decode at a reduced scale, much faster for big photos
            im = ImageOps.exif_transpose(im)  # phone photos store their rotation in EXIF
            im = _grey_or_rgb(im)
            im = ImageOps.fit(im, (size, size), Image.Resampling.LANCZOS)
            a = np.asarray(im, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    # Grey pictures saved as RGB (common for scans and X-rays) stay grey: 3x less memory, same information.
    if a.ndim == 3 and np.abs(a.astype(np.int16) - a[..., :1]).max() <= 8:
        a = np.ascontiguousarray(a[..., 0])
    return a


def _grey_or_rgb(im: Image.Image) -> Image.Image:
    if im.mode in ("I;16", "I;16B", "I", "F"):  # 16-bit or float grey: scale to 0..255 instead of clipping
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if a.max() > 255 else 255.0
        return Image.fromarray(np.clip(a * (255.0 / top), 0, 255).astype(np.uint8))
    if im.mode in ("1", "L"):
        return im.convert("L")
    if "A" in im.mode or "transparency" in im.info:  # transparent pixels become white, not black
        rgba = im.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    return im.convert("RGB")


# --- .npz -------------------------------------------------------------------------------------------------


def load_npz(src: Path | BinaryIO, name: str, source: str) -> ImageSet:
    """Load a MedMNIST-style .npz (see :func:`read_npz`); ``val_*`` arrays, if any, join the train split."""
    x, y, tx, ty, classes = read_npz(src, source)
    info = DatasetInfo(name, name, f"your images ({source})", "unknown", len(y), len(ty), classes, "yours", source)
    return ImageSet(info, x, y, tx, ty)


def read_npz(src: Path | BinaryIO, source: str | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """Arrays of an .npz with ``train_images``, ``train_labels``, ``test_images``, ``test_labels``.

    Optional: ``val_images``/``val_labels`` (added to train) and ``classes`` (names; otherwise the label values).
    Images are N×H×W or N×H×W×1|3, uint8 or float in 0..1; labels are N or N×1 integers.
    """
    source = source or str(src)
    try:
        with np.load(src, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{source} is not a readable .npz file ({e}).") from e
    missing = [k for k in NPZ_KEYS if k not in arrays]
    if missing:
        raise DataError(f"{source} is missing {', '.join(missing)}; a MedMNIST-style .npz needs the arrays "
                        f"{', '.join(NPZ_KEYS)} (found: {', '.join(arrays) or 'none'}).")
    x, y = _images(arrays["train_images"], "train_images", source), _labels(arrays, "train", source)
    tx, ty = _images(arrays["test_images"], "test_images", source), _labels(arrays, "test", source)
    if "val_images" in arrays and "val_labels" in arrays:
        x = np.concatenate([x, _match(_images(arrays["val_images"], "val_images", source), x, source)])
        y = np.concatenate([y, _labels(arrays, "val", source)])
    tx = _match(tx, x, source)
    x = _match(x, tx, source)  # grey train + colour test: both colour
    if "classes" in arrays:
        classes = tuple(str(c) for c in arrays["classes"].ravel())
        values = np.arange(len(classes))
    else:
        values = np.unique(np.concatenate([y, ty]))
        classes = tuple(str(v) for v in values)
    for split, labels in (("train", y), ("test", ty)):
        bad = np.setdiff1d(labels, values)
        if len(bad):
            raise DataError(f"{source}: {split} labels {bad[:5].tolist()} are not among the {len(classes)} classes.")
        absent = [classes[i] for i in np.flatnonzero(np.isin(values, labels, invert=True))]
        if absent:
            raise DataError(f"{source}: the {split} split has no images of class(es) {absent[:5]}; every class "
                            "needs images in both splits.")
    if len(classes) < 2:
        raise DataError(f"{source} has only {len(classes)} class; a classifier needs at least 2.")
    # values is sorted, so searchsorted maps each label value to its class index.
    return x, np.searchsorted(values, y).astype(np.int64), tx, np.searchsorted(values, ty).astype(np.int64), classes


def _images(a: np.ndarray, key: str, source: str) -> np.ndarray:
    if a.ndim == 4 and a.shape[-1] == 1:
        a = a[..., 0]
    if not (a.ndim == 3 or (a.ndim == 4 and a.shape[-1] == 3)) or min(a.shape) == 0:
        raise DataError(f"{source}: {key} has shape {a.shape}; expected N×H×W (grey) or N×H×W×3 (colour).")
    if a.dtype == np.uint8:
        return a
    if a.dtype.kind == "f" and a.min() >= 0 and a.max() <= 1:
        return np.round(a * 255).astype(np.uint8)
    if a.dtype.kind in "iuf" and a.min() >= 0 and a.max() <= 255:
        return np.round(a).astype(np.uint8)
    raise DataError(f"{source}: {key} values must be 0..255 (uint8) or 0..1 (float), got {a.dtype} "
                    f"{a.min()}..{a.max()}.")


def _labels(arrays: dict[str, np.ndarray], split: str, source: str) -> np.ndarray:
    y, n = arrays[f"{split}_labels"], len(arrays[f"{split}_images"])
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{source}: {split}_labels has shape {y.shape}; expected N or N×1 class indices "
                        "(multi-label data is not supported).")
    if len(y) != n:
        raise DataError(f"{source}: {split}_images has {n} images but {split}_labels has {len(y)} labels.")
    if y.dtype.kind not in "iu" and not (y.dtype.kind == "f" and np.all(y == np.round(y))):
        raise DataError(f"{source}: {split}_labels must be whole numbers (class indices), got {y.dtype}.")
    return y.astype(np.int64)


def _match(a: np.ndarray, like: np.ndarray, source: str) -> np.ndarray:
    """``a`` with ``like``'s colour-ness (grey repeated to RGB if ``like`` is colour); H×W must agree."""
    if a.shape[1:3] != like.shape[1:3]:
        raise DataError(f"{source}: train and test images differ in size ({like.shape[1:3]} vs {a.shape[1:3]}); "
                        "all images need the same height and width.")
    if like.ndim == 4 and a.ndim == 3:
        return np.repeat(a[..., None], 3, axis=3)
    return a
