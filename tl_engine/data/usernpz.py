"""Reading a MedMNIST-style .npz without trusting it: headers checked before any array byte is read.

An .npz is a zip of .npy members. Each member's header declares its shape and dtype; a 3 MB file can declare
3 GiB. So only the expected members are opened, each header is checked (dtype, shape, byte count, compression)
against named limits before reading, and images are streamed in chunks straight into their uint8 result, so a
float64 array never exists in memory at full size. Object arrays (pickles) are refused.
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np
from numpy.lib import format as npformat

from ..errors import DataError
from .memory import reserve
from .usersplit import split_indices, take_in_place
from .userzip import READABLE, open_zip

NPZ_KEYS = ("train_images", "train_labels", "test_images", "test_labels")  # required
OPTIONAL_KEYS = ("val_images", "val_labels", "classes")
MAX_NPZ_IMAGES = 250_000  # per split; MedMNIST's largest train split has 165,466 images
MAX_NPZ_SIDE = 256  # pixels; the race resizes batches of 256 images at this size (256 MB of float32)
MAX_NPZ_DECODED_BYTES = 768 * 2**20  # all splits as uint8 (grey repeated to RGB if any split is colour)
MAX_NPZ_RAW_BYTES = 2 * 2**30  # bytes unpacked from all members together (a float64 set is 8x its uint8 result)
MAX_CLASSES = 1000  # class names in ``classes``; also bounds the label values used as classes
LABEL_RANGE = 2**31 - 1  # labels are class indices: whole numbers within ±this
CHUNK_BYTES = 16 * 2**20  # raw bytes per streamed read


class NpzSplits(NamedTuple):
    """The three splits of an .npz, uint8 images and int64 class indices, and the class names."""

    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray  # val_images, or 15 % of each class carved from train_images when the file has none
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    classes: tuple[str, ...]
    val_given: bool = True  # False: val_x/val_y were carved from train_images


@dataclass(frozen=True)
class Member:
    """One .npy member, its header checked but not a data byte read."""

    key: str
    info: zipfile.ZipInfo
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize  # Python ints: no overflow on lying shapes


def read_npz(src: Path | BinaryIO, source: str | None = None) -> NpzSplits:
    """Arrays of an .npz with ``train_images``, ``train_labels``, ``test_images``, ``test_labels``.

    Optional: ``val_images``/``val_labels`` and ``classes`` (names; otherwise the label values). Images are
    N×H×W or N×H×W×1|3, uint8, or integers/floats in 0..255 or 0..1; labels are N or N×1 whole numbers.

    Raises:
        DataError: anything unreadable, unexpected or over a limit, with what to do about it.
    """
    source = source or str(src)
    if isinstance(src, (str, Path)):
        with open(src, "rb") as f:
            return _read(f, source)
    return _read(src, source)


def _read(fp: BinaryIO, source: str) -> NpzSplits:
    head = fp.read(6)
    fp.seek(0)
    if head == b"\x93NUMPY":
        raise DataError(f"{source} is a single .npy array renamed .npz; save the splits with "
                        "np.savez(path, train_images=..., train_labels=..., test_images=..., test_labels=...).")
    with open_zip(fp, source) as zf:
        names = {i.filename.removesuffix(".npy"): i for i in zf.infolist()}
        missing = [k for k in NPZ_KEYS if k not in names]
        if missing:
            raise DataError(f"{source} is missing {', '.join(missing)}; a MedMNIST-style .npz needs the arrays "
                            f"{', '.join(NPZ_KEYS)} (found: {', '.join(sorted(names)) or 'none'}).")
        has_val = "val_images" in names and "val_labels" in names
        splits = ("train", "val", "test") if has_val else ("train", "test")
        # Only the expected members are opened; anything else in the file is never read.
        keys = NPZ_KEYS + (("val_images", "val_labels") if has_val else ())
        keys += ("classes",) if "classes" in names else ()
        m = {k: _member(zf, names[k], k, source) for k in keys}
        colour = _check_shapes(m, splits, source)
        reserve(sum(math.prod(m[f"{s}_images"].shape[:3]) for s in splits) * (3 if colour else 1))
        out: dict[str, np.ndarray] = {}
        for s in splits:
            out[f"{s}_y"] = _labels(zf, m[f"{s}_labels"], source)
            out[f"{s}_x"] = _images(zf, m[f"{s}_images"], colour, source)
        names_given = _class_names(zf, m["classes"], source) if "classes" in m else None
    return _index_labels(out, splits, names_given, source)


def _member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, source: str) -> Member:
    if info.compress_type not in READABLE:
        raise DataError(f"{source}: {key} is compressed in a way that is not read here; save with np.savez or "
                        "np.savez_compressed.")
    try:
        with zf.open(info) as f:
            version = npformat.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = npformat.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = npformat.read_array_header_2_0(f)
            else:
                raise ValueError(f"npy format version {version}")
    except Exception as e:  # noqa: BLE001 (not npy data, damaged entry, odd header: all "not readable")
        raise DataError(f"{source}: {key} is not a readable numpy array ({type(e).__name__}: {e}); save the "
                        "arrays with np.savez.") from e
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise DataError(f"{source}: {key} holds Python objects or records ({dtype}); save plain numeric arrays "
                        "(pickled data is never loaded).")
    if any(int(d) < 0 for d in shape):  # a hand-made header: numpy itself would stop with a ValueError
        raise DataError(f"{source}: {key} declares a negative size {tuple(shape)}; the file is damaged or was not "
                        "written by numpy. Save the arrays again with np.savez.")
    if fortran and len(shape) > 1:
        raise DataError(f"{source}: {key} is stored in Fortran order; save np.ascontiguousarray(...) instead.")
    return Member(key, info, tuple(int(d) for d in shape), dtype)


def _check_shapes(m: dict[str, Member], splits: tuple[str, ...], source: str) -> bool:
    """Check every header against the limits before a data byte is read; True if the result is colour."""
    raw = 0
    for s in splits:
        im, lab = m[f"{s}_images"], m[f"{s}_labels"]
        shape = im.shape[:-1] if len(im.shape) == 4 and im.shape[-1] == 1 else im.shape
        if not (len(shape) == 3 or (len(shape) == 4 and shape[-1] == 3)) or min(shape) == 0:
            raise DataError(f"{source}: {s}_images has shape {im.shape}; expected N×H×W (grey) or N×H×W×3 (colour).")
        if im.dtype.kind not in "uif" or im.dtype.itemsize > 8:
            raise DataError(f"{source}: {s}_images has type {im.dtype}; save uint8 (0..255) or float (0..1).")
        if shape[0] > MAX_NPZ_IMAGES or max(shape[1:3]) > MAX_NPZ_SIDE:
            raise DataError(f"{source}: {s}_images has shape {im.shape}; at most {MAX_NPZ_IMAGES:,} images of at "
                            f"most {MAX_NPZ_SIDE}×{MAX_NPZ_SIDE} pixels are read. Resize or subsample the data.")
        if not (lab.dtype.kind in "uif" and lab.dtype.itemsize <= 8 and (len(lab.shape) == 1 or lab.shape[1:] == (1,))
                and len(lab.shape) in (1, 2)):
            raise DataError(f"{source}: {s}_labels has shape {lab.shape} and type {lab.dtype}; expected N or N×1 "
                            "class indices (multi-label data is not supported).")
        if lab.shape[0] != shape[0]:
            raise DataError(f"{source}: {s}_images has {shape[0]} images but {s}_labels has {lab.shape[0]} labels.")
        raw += im.nbytes + lab.nbytes
        m[f"{s}_images"] = Member(im.key, im.info, shape, im.dtype)
    sides = {m[f"{s}_images"].shape[1:3] for s in splits}
    if len(sides) > 1:
        raise DataError(f"{source}: the splits' images differ in size ({', '.join(map(str, sorted(sides)))}); "
                        "all images need the same height and width.")
    colour = any(len(m[f"{s}_images"].shape) == 4 for s in splits)
    decoded = sum(math.prod(m[f"{s}_images"].shape[:3]) * (3 if colour else 1) for s in splits)
    if decoded > MAX_NPZ_DECODED_BYTES or raw > MAX_NPZ_RAW_BYTES:
        raise DataError(f"{source} declares {max(decoded, raw) / 2**30:.1f} GB of arrays; at most "
                        f"{MAX_NPZ_DECODED_BYTES // 2**20} MB of images are read. Subsample or resize the data.")
    return colour


def _chunks(zf: zipfile.ZipFile, mem: Member, row_bytes: int, source: str):
    """Yield the member's data bytes, whole rows at a time; DataError if it holds fewer than declared."""
    rows = max(1, CHUNK_BYTES // max(row_bytes, 1))
    left = mem.nbytes
    with zf.open(mem.info) as f:
        version = npformat.read_magic(f)
        (npformat.read_array_header_1_0 if version == (1, 0) else npformat.read_array_header_2_0)(f)
        while left > 0:
            want = min(left, rows * row_bytes)
            try:
                data = f.read(want)
            except Exception as e:  # noqa: BLE001 (bad CRC or deflate data)
                raise DataError(f"{source}: {mem.key} is damaged ({type(e).__name__}); save the file again.") from e
            if len(data) != want:
                raise DataError(f"{source}: {mem.key} holds fewer bytes than its header declares; the file is "
                                "damaged or cut short, save it again.")
            left -= want
            yield data


def _images(zf: zipfile.ZipFile, mem: Member, colour: bool, source: str) -> np.ndarray:
    shape, dt = mem.shape, mem.dtype
    row = math.prod(shape[1:])
    out = np.empty(shape, np.uint8)
    flat = out.reshape(len(out), -1)
    if dt.kind == "u" and dt.itemsize == 1:
        at = 0
        for data in _chunks(zf, mem, row, source):
            part = np.frombuffer(data, np.uint8).reshape(-1, row)
            flat[at:at + len(part)] = part
            at += len(part)
    else:
        lo, hi = math.inf, -math.inf  # pass 1: the value range decides between 0..1 and 0..255
        for data in _chunks(zf, mem, row * dt.itemsize, source):
            part = np.frombuffer(data, dt)
            if dt.kind == "f" and not np.isfinite(part).all():
                raise DataError(f"{source}: {mem.key} contains NaN or infinite values; images must be 0..255 or "
                                "0..1.")
            lo, hi = min(lo, float(part.min())), max(hi, float(part.max()))
        scale = 255.0 if dt.kind == "f" and hi <= 1 else 1.0
        if lo < 0 or hi * scale > 255:
            raise DataError(f"{source}: {mem.key} values must be 0..255 (uint8) or 0..1 (float), got {dt} "
                            f"{lo:g}..{hi:g}.")
        at = 0
        for data in _chunks(zf, mem, row * dt.itemsize, source):  # pass 2: convert chunk by chunk
            part = np.frombuffer(data, dt).reshape(-1, row)
            flat[at:at + len(part)] = np.round(part * scale) if scale != 1 or dt.kind == "f" else part
            at += len(part)
    if colour and out.ndim == 3:
        out = np.repeat(out[..., None], 3, axis=3)
    return out


def _labels(zf: zipfile.ZipFile, mem: Member, source: str) -> np.ndarray:
    y = np.frombuffer(b"".join(_chunks(zf, mem, mem.dtype.itemsize, source)), mem.dtype)
    if mem.dtype.kind == "f" and not (np.isfinite(y).all() and np.all(y == np.round(y))):
        raise DataError(f"{source}: {mem.key} must be whole finite numbers (class indices), got {mem.dtype} values "
                        "that are not; save integer labels.")
    if len(y) and (float(y.min()) < -LABEL_RANGE or float(y.max()) > LABEL_RANGE):
        raise DataError(f"{source}: {mem.key} holds values up to {float(np.abs(y).max()):g}; labels are class "
                        f"indices (0, 1, 2...), save them as small integers.")
    return y.astype(np.int64)


def _class_names(zf: zipfile.ZipFile, mem: Member, source: str) -> tuple[str, ...]:
    if mem.dtype.kind not in "USiu" or math.prod(mem.shape) > MAX_CLASSES or mem.dtype.itemsize > 1024:
        raise DataError(f"{source}: classes must be at most {MAX_CLASSES} short names (strings), got "
                        f"{mem.dtype} {mem.shape}.")
    a = np.frombuffer(b"".join(_chunks(zf, mem, mem.dtype.itemsize, source)), mem.dtype)
    return tuple(x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x) for x in a.tolist())


def _index_labels(out: dict[str, np.ndarray], splits: tuple[str, ...], names: tuple[str, ...] | None,
                  source: str) -> NpzSplits:
    """Label values -> class indices 0..C-1; every class needs images in every split."""
    if names is not None:
        classes, values = names, np.arange(len(names))
    else:
        values = np.unique(np.concatenate([out[f"{s}_y"] for s in splits]))
        if len(values) > MAX_CLASSES:
            raise DataError(f"{source} has {len(values):,} different label values; at most {MAX_CLASSES} classes "
                            "are supported (labels are class indices 0, 1, 2...).")
        classes = tuple(str(v) for v in values.tolist())
    if len(classes) < 2:
        raise DataError(f"{source} has only {len(classes)} class; a classifier needs at least 2.")
    for s in splits:
        labels = out[f"{s}_y"]
        bad = np.setdiff1d(labels, values)
        if len(bad):
            raise DataError(f"{source}: {s} labels {bad[:5].tolist()} are not among the {len(classes)} classes.")
        absent = [classes[i] for i in np.flatnonzero(np.isin(values, labels, invert=True))]
        if absent:
            raise DataError(f"{source}: the {s} split has no images of class(es) {absent[:5]}; every class "
                            "needs images in every split.")
        out[f"{s}_y"] = np.searchsorted(values, labels).astype(np.int64)  # values is sorted
    if "val" not in splits:  # no validation split given: carve it from train, class by class
        keep, val = split_indices(out["train_y"], classes, ("val",), source, "training image(s)")
        out["val_x"], out["val_y"] = out["train_x"][val], out["train_y"][val]
        out["train_x"], out["train_y"] = take_in_place(out["train_x"], keep), out["train_y"][keep]
    return NpzSplits(out["train_x"], out["train_y"], out["val_x"], out["val_y"], out["test_x"], out["test_y"],
                     classes, "val" in splits)
