"""The user's own images: a folder or .zip of class sub-folders, or a MedMNIST-style .npz.

Folders and zips are read the same way: one sub-folder per class (``cats/``, ``dogs/``...), images of any size
and mode. If the top level is split into ``train/`` and ``test/`` (and optionally ``val/``, ``valid/`` or
``validation/``), those splits are used, and a missing validation (or test) split is carved from train; a lone
held-out folder (``train/`` + ``val/``, the common photo layout) becomes the *test* set, the larger held-out set,
and validation is carved from train (15 % of each class); otherwise each class is split 70/15/15 into
train/validation/test with a fixed seed. :func:`tl_engine.data.usersplit.splits_sentence` says which happened.
Every image is centre-cropped to a square and resized to STORE_SIZE at load time, so the whole set is one uint8
array; colour is kept if any image has colour. Zips are read entry by entry through capped streams and never extracted.

These files come from browser uploads on a shared server: every size is capped (see the constants here and in
:mod:`tl_engine.data.images`, :mod:`tl_engine.data.userzip`, :mod:`tl_engine.data.usernpz`), one bad file is skipped and
counted with a reason, and everything else the user can fix is a :class:`DataError` saying how.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import DataError
from .images import (
    IMAGE_EXTS,
    MAX_FILE_BYTES,
    STORE_SIZE,
    UNSUPPORTED_EXTS,
    PixelBudget,
    Skip,
    decode,
    unsupported_reason,
)
from .imageset import DatasetInfo, ImageSet
from .memory import reserve, trim_heap
from .usernpz import NpzSplits, read_npz
from .usersplit import VAL_FRACTION, split_indices, splits_sentence
from .userzip import MAX_ENTRIES, Entries, open_zip, zip_entries

__all__ = ["STORE_SIZE", "load_path", "load_upload", "load_zip", "load_npz", "read_npz", "from_entries",
           "NpzSplits"]

VAL_DIRS = ("val", "valid", "validation")  # the first found next to train/: validation, or test if no test/
# All decoded images at STORE_SIZE² bytes (grey) or × 3 (colour): 49,152 grey or 16,384 colour images. Checked
# as grey before the first decode, and as colour at the first colour image (the whole set becomes colour then).
MAX_DECODED_BYTES = 768 * 2**20
MAX_CLASSES = 1000  # class folders; more is a mistake (e.g. one folder per image), not a classroom dataset
_IGNORED_HIDDEN = "hidden or macOS metadata files (ignored)"
_OUTSIDE = "not inside a class folder (ignored; put images in one sub-folder per class)"


def load_path(path: Path) -> ImageSet:
    """Load a folder, a .zip or a .npz (see the module docstring)."""
    path = Path(path)
    if path.is_dir():
        notes: Counter = Counter()
        return from_entries(_folder_entries(path, notes), path.name, str(path), notes)
    suffix = path.suffix.lower()
    if suffix not in (".zip", ".npz"):
        raise DataError(f"{path} is not a folder, .zip or .npz. Put one sub-folder of images per class in a "
                        "folder or a .zip, or save arrays as a MedMNIST-style .npz.")
    try:
        f = open(path, "rb")  # noqa: SIM115 (closed below; zip readers keep it open while loading)
    except OSError as e:
        raise DataError(f"{path} cannot be opened ({e.strerror}); check the path and its permissions.") from e
    with f:
        return load_zip(f, path.stem, str(path)) if suffix == ".zip" else load_npz(f, path.stem, str(path))


def load_upload(filename: str, data: bytes) -> ImageSet:
    """Load an uploaded .zip or .npz from its bytes (the app's file uploader)."""
    suffix, stem = Path(filename).suffix.lower(), Path(filename).stem
    if suffix == ".zip":
        return load_zip(io.BytesIO(data), stem, filename)
    if suffix == ".npz":
        return load_npz(io.BytesIO(data), stem, filename)
    raise DataError(f"{filename}: upload a .zip of class folders or a MedMNIST-style .npz.")


def load_zip(src: BinaryIO, name: str, source: str) -> ImageSet:
    """Load a .zip of class folders without extracting it; unsafe entry names are refused."""
    with open_zip(src, source) as zf:
        return from_entries(zip_entries(zf, source), name, source)


def load_npz(src: Path | BinaryIO, name: str, source: str) -> ImageSet:
    """Load a MedMNIST-style .npz (see :func:`tl_engine.data.usernpz.read_npz`)."""
    s = read_npz(src, source)
    splits = (f"The file's test arrays are the test set; validation is {VAL_FRACTION:.0%} of each class of its "
              "train arrays, carved with a fixed seed." if not s.val_given else
              "The file's train, val and test arrays are used as they are.")
    info = DatasetInfo(name, name, f"your images ({source})", len(s.train_y), len(s.val_y), len(s.test_y),
                       s.classes, "yours", source, splits,
                       per_class_counts((s.train_y, s.val_y, s.test_y), len(s.classes)))
    return ImageSet(info, s.train_x, s.train_y, s.val_x, s.val_y, s.test_x, s.test_y)


def _folder_entries(root: Path, notes: Counter) -> Entries:
    """A capped reader per file below ``root``; links are never followed (they could point anywhere)."""
    out: Entries = {}
    for top, dirs, files in os.walk(root, followlinks=False):
        here = Path(top)
        for d in [d for d in dirs if (here / d).is_symlink()]:
            notes["links to folders (not followed)"] += 1
            dirs.remove(d)
        dirs.sort()
        for f in sorted(files):
            p = here / f
            if p.is_symlink():
                notes["links (not followed; copy the file instead)"] += 1
            elif p.is_file():  # not a FIFO or device, which would block or never end
                out[p.relative_to(root).parts] = lambda p=p: _read_file(p)
            if len(out) > MAX_ENTRIES:
                raise DataError(f"{root} has more than {MAX_ENTRIES:,} files; use a smaller dataset.")
    return out


def _read_file(p: Path) -> bytes:
    try:
        with open(p, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise Skip(f"could not be read ({e.strerror})") from e
    if len(data) > MAX_FILE_BYTES:
        raise Skip(f"larger than {MAX_FILE_BYTES // 2**20} MB")
    return data


# --- class folders -> ImageSet ----------------------------------------------------------------------------


def from_entries(entries: Entries, name: str, source: str, notes: Counter | None = None) -> ImageSet:
    """Build an ImageSet from files keyed by their path parts (shared by folders and zips).

    ``notes`` counts files already left out (e.g. links), by reason; they are reported, not counted as skipped.
    """
    notes = Counter(notes or {})
    skips: Counter = Counter()
    files: Entries = {}
    for parts, read in entries.items():
        ext = os.path.splitext(parts[-1])[1].lower()
        if any(s.startswith(".") or s == "__MACOSX" for s in parts):
            notes[_IGNORED_HIDDEN] += 1
        elif ext in IMAGE_EXTS:
            files[parts] = read
        elif ext in UNSUPPORTED_EXTS:
            skips[unsupported_reason(UNSUPPORTED_EXTS[ext])] += 1
        else:
            notes[f"not images (ignored, e.g. {parts[-1][:40]})"] += 1
    # A zip of a folder wraps everything in that folder: look inside single wrapper folders.
    while files and len({p[0] for p in files}) == 1 and all(len(p) >= 3 for p in files):
        files = {p[1:]: r for p, r in files.items()}
    groups, folders = _groups(files, notes)
    classes = sorted(groups["train"], key=str.lower)
    if not 2 <= len(classes) <= MAX_CLASSES:
        shown = ", ".join(classes[:5]) + ("..." if len(classes) > 5 else "")
        raise DataError(f"{source} has {len(classes)} class folder(s) with images ({shown or 'none'}); a classifier "
                        f"needs at least 2 (at most {MAX_CLASSES}): put each class's images in its own sub-folder.")
    for split, g in groups.items():
        if split != "train" and set(g) != set(classes):
            odd = sorted(set(g) ^ set(classes))
            raise DataError(f"{source}: class folders {odd[:5]} are in only one of train/ and {split}/; "
                            "every split needs the same class folders.")
    n = sum(len(r) for g in groups.values() for r in g.values())
    grey, colour = MAX_DECODED_BYTES // STORE_SIZE**2, MAX_DECODED_BYTES // (STORE_SIZE**2 * 3)
    if n > grey:  # checked before decoding: the budget is the image count
        raise DataError(f"{source} has {n:,} images; at most {grey:,} are read ({colour:,} in colour; "
                        f"{STORE_SIZE}×{STORE_SIZE} pixels each in memory). Use fewer images per class.")
    too_many = "" if n <= colour else (
        f"{source} has {n:,} images and they are in colour; at most {colour:,} colour images are read "
        f"({STORE_SIZE}×{STORE_SIZE}×3 bytes each in memory). Use fewer images per class.")
    reserve(n * STORE_SIZE**2 * 3)  # a server's uploads being read at once share one pool (data/memory.py)
    budget = PixelBudget(source)  # all splits together: one upload decodes at most MAX_UPLOAD_PIXELS
    decoded = {split: _decode_split(g, classes, split if len(groups) > 1 else "", skips, source, budget, too_many)
               for split, g in groups.items()}
    ims = _three_splits(decoded, tuple(classes), source)
    splits = splits_sentence(folders, tuple(s for s in ("val", "test") if s not in decoded))
    del decoded
    colour = any(im.ndim == 3 for split_ims, _ in ims.values() for im in split_ims)
    arrays = {s: (_stack(xs, colour), np.asarray(ys, np.int64)) for s, (xs, ys) in ims.items()}
    (x, y), (vx, vy), (tx, ty) = arrays["train"], arrays["val"], arrays["test"]
    info = DatasetInfo(name, name, f"your images ({source})", len(y), len(vy), len(ty), tuple(classes), "yours",
                       source, splits, per_class_counts((y, vy, ty), len(classes)))
    reasons = tuple(f"{k} file{'s' if k > 1 else ''}: {why}" for why, k in skips.most_common())
    reasons += tuple(f"{k} file{'s' if k > 1 else ''}: {why}" for why, k in notes.most_common())
    return ImageSet(info, x, y, vx, vy, tx, ty, sum(skips.values()), reasons)


def per_class_counts(labels: tuple[np.ndarray, ...], n_classes: int) -> tuple[tuple[int, ...], ...]:
    """Images per class of each split (what DatasetInfo.class_counts holds)."""
    return tuple(tuple(int(k) for k in np.bincount(y, minlength=n_classes)) for y in labels)


def _groups(files: Entries, notes: Counter) -> tuple[dict[str, dict[str, list]], dict[str, str]]:
    """Readers per split ("train", and "val"/"test" if given) and class folder; and split -> its folder ("val/")."""
    tops = {p[0].lower(): p[0] for p in files if len(p) >= 3}
    val_dir = next((tops[d] for d in VAL_DIRS if d in tops), None)
    given = {"train": tops.get("train"), "val": val_dir, "test": tops.get("test")}
    if given["train"] and val_dir and not given["test"]:
        given = {"train": given["train"], "test": val_dir}  # the one held-out folder is the (larger) test set
    if not (given["train"] and (given.get("val") or given["test"])):
        given = {}  # no splits: the top level holds the class folders
    by_dir = {d: s for s, d in given.items() if d}
    groups: dict[str, dict[str, list]] = {s: {} for s in by_dir.values()} or {"train": {}}
    for parts, read in files.items():
        split = "train"
        if by_dir:
            split = by_dir.get(parts[0], "")
            parts = parts[1:]
        if not split or len(parts) < 2:  # files next to the class folders are in no class
            notes[_OUTSIDE] += 1
            continue
        groups[split].setdefault(parts[0], []).append(read)
    return groups, {s: f"{d}/" for s, d in given.items() if d}


def _decode_split(groups: dict[str, list], classes: list[str], split: str, skips: Counter, source: str,
                  budget: PixelBudget, too_many_colour: str) -> tuple[list[np.ndarray], list[int]]:
    ims: list[np.ndarray] = []
    labels: list[int] = []
    for c, cls in enumerate(classes):
        readers = groups[cls]
        before = len(ims)
        for read in readers:
            try:
                ims.append(decode(read(), budget=budget))
                labels.append(c)
                if too_many_colour and ims[-1].ndim == 3:
                    raise DataError(too_many_colour)
            except Skip as s:
                skips[str(s)] += 1
            except DataError:
                raise  # a limit on the whole dataset (e.g. total unpacked bytes): stop loading
            except Exception:  # noqa: BLE001 (one hostile file must never abort the load: count it)
                skips["damaged (could not be read)"] += 1
        if len(ims) == before:
            where = f"{split}/{cls}" if split else cls
            raise DataError(f"{source}: class folder {where!r} has no readable images ({len(readers)} file(s) "
                            "could not be opened); add PNG/JPEG images or remove it.")
    return ims, labels


def _three_splits(decoded: dict[str, tuple[list, list]], classes: tuple[str, ...], source: str
                  ) -> dict[str, tuple[list, list]]:
    """Train/val/test image lists: given splits kept, missing ones carved per class from train."""
    carved = tuple(s for s in ("val", "test") if s not in decoded)
    if not carved:
        return decoded
    ims, labels = decoded["train"]
    parts = split_indices(np.asarray(labels, np.int64), classes, carved, source)
    out = dict(decoded)
    for s, idx in zip(("train",) + carved, parts):
        out[s] = ([ims[i] for i in idx], [labels[i] for i in idx])
    ims.clear()  # the split lists now hold the only references, so _stack can release images as it copies
    return out


def _stack(ims: list[np.ndarray], colour: bool) -> np.ndarray:
    """One array from same-size images, filled in place and each image released once copied: with the freed
    heap handed back as it goes, no 2x peak (a 21,000-image flood peaked at 727 MB without, 432 MB with)."""
    out = np.empty((len(ims), STORE_SIZE, STORE_SIZE) + ((3,) if colour else ()), np.uint8)
    for i, im in enumerate(ims):
        out[i] = im[..., None] if colour and im.ndim == 2 else im  # grey broadcasts to three equal channels
        ims[i] = None  # type: ignore[call-overload]
        if i % 1024 == 1023:
            trim_heap()
    trim_heap()
    return out
