"""The user's own images: folders, zips and npz files (see tl_engine.data.user)."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tl_engine.data.user import STORE_SIZE, load_path, load_upload
from tl_engine.errors import DataError


def load_dataset(path) -> object:
    """User data straight from its loader (tl_engine.data.bundled's dispatch is tested in test_data.py)."""
    return load_path(Path(path))

# --- user data --------------------------------------------------------------------------------------------


def png(path: Path, value: int, size=(20, 14), colour=False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode, fill = ("RGB", (value, 255 - value, 30)) if colour else ("L", value)
    Image.new(mode, size, fill).save(path)


def make_folder(root: Path, per_class=5, colour_one=False) -> Path:
    for c, cls in enumerate(("cats", "dogs")):
        for i in range(per_class):
            png(root / cls / f"{i}.png", 10 * i + 100 * c, colour=colour_one and c == 1 and i == 0)
    (root / "cats" / "notes.txt").write_text("not an image")
    (root / ".hidden" / "x.png").parent.mkdir()
    png(root / ".hidden" / "x.png", 3)
    return root


def test_folder_grey_split_70_15_15(tmp_path):
    ds = load_dataset(str(make_folder(tmp_path / "pets", per_class=10)))
    assert ds.info.classes == ("cats", "dogs") and ds.info.name == "pets" and ds.skipped == 0
    assert ds.train_x.shape == (12, STORE_SIZE, STORE_SIZE) and ds.test_x.shape == (4, STORE_SIZE, STORE_SIZE)
    assert np.bincount(ds.train_y).tolist() == [6, 6] and np.bincount(ds.val_y).tolist() == [2, 2]
    assert np.bincount(ds.test_y).tolist() == [2, 2]
    assert (ds.info.n_train, ds.info.n_val, ds.info.n_test) == (12, 4, 4)
    # Each file lands in exactly one split: the 20 distinct grey values are all there, once.
    values = sorted(int(im[0, 0]) for im in np.concatenate([ds.train_x, ds.val_x, ds.test_x]))
    assert values == sorted(10 * i + 100 * c for c in range(2) for i in range(10))
    # The text file and the hidden folder are not images: reported, but not counted as skipped images.
    assert any("not images" in r and "notes.txt" in r for r in ds.skipped_reasons)
    assert any(r.startswith("1 file: hidden") for r in ds.skipped_reasons)
    again = load_dataset(tmp_path / "pets")
    assert np.array_equal(again.test_x, ds.test_x) and np.array_equal(again.val_x, ds.val_x)  # seeded split


def test_folder_with_one_colour_image_is_all_rgb(tmp_path):
    ds = load_dataset(str(make_folder(tmp_path / "pets", colour_one=True)))
    assert ds.train_x.shape[1:] == (STORE_SIZE, STORE_SIZE, 3) and ds.val_x.shape[1:] == ds.test_x.shape[1:]
    grey = np.concatenate([ds.train_x, ds.val_x, ds.test_x])[0]
    assert (grey[..., 0] == grey[..., 2]).all()  # grey images repeated, not tinted


def test_train_test_folders_used_as_given_and_wrapper_folder(tmp_path):
    root = tmp_path / "wrap" / "data"
    for split, n in (("train", 4), ("test", 2), ("val", 1)):
        for cls in ("a", "b", "c"):
            for i in range(n):
                png(root / split / cls / f"{i}.jpg" if split == "test" else root / split / cls / f"{i}.png", 50)
    ds = load_dataset(str(tmp_path / "wrap"))
    assert ds.info.classes == ("a", "b", "c")
    assert np.bincount(ds.train_y).tolist() == [4, 4, 4]
    assert np.bincount(ds.val_y).tolist() == [1, 1, 1]  # val/ is the validation split
    assert np.bincount(ds.test_y).tolist() == [2, 2, 2]


def test_train_test_folders_without_val_carve_validation_from_train(tmp_path):
    for split, n in (("train", 10), ("test", 2)):
        for cls in ("a", "b"):
            for i in range(n):
                png(tmp_path / "d" / split / cls / f"{i}.png", 10 * i)
    ds = load_dataset(tmp_path / "d")
    assert np.bincount(ds.train_y).tolist() == [8, 8] and np.bincount(ds.val_y).tolist() == [2, 2]
    assert np.bincount(ds.test_y).tolist() == [2, 2]


def zip_bytes(root: Path, extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                zf.write(p, Path(root.name) / p.relative_to(root))
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_zip_loads_like_the_folder(tmp_path):
    folder = load_dataset(str(make_folder(tmp_path / "pets")))
    (tmp_path / "pets.zip").write_bytes(zip_bytes(tmp_path / "pets"))
    for ds in (load_dataset(str(tmp_path / "pets.zip")), load_upload("pets.zip", zip_bytes(tmp_path / "pets"))):
        assert ds.info.classes == folder.info.classes
        assert np.array_equal(ds.train_x, folder.train_x) and np.array_equal(ds.test_y, folder.test_y)
        assert np.array_equal(ds.val_x, folder.val_x)


@pytest.mark.parametrize("bad", ["../evil.png", "/abs/evil.png", "pets/../../evil.png"])
def test_zip_with_unsafe_entry_is_refused(tmp_path, bad):
    make_folder(tmp_path / "pets")
    (tmp_path / "bad.zip").write_bytes(zip_bytes(tmp_path / "pets", {bad: b"x"}))
    with pytest.raises(DataError, match=re.escape(repr(bad))):
        load_dataset(str(tmp_path / "bad.zip"))


@pytest.mark.parametrize("label_shape", ["N", "Nx1"])
@pytest.mark.parametrize("colour", [False, True])
def test_npz_loads(tmp_path, label_shape, colour):
    rng = np.random.default_rng(0)
    shape = (12, 9, 9, 3) if colour else (12, 9, 9)
    y = np.array([0, 1, 2] * 4)
    arrays = {"train_images": rng.integers(0, 256, shape, dtype=np.uint8), "train_labels": y,
              "test_images": rng.random((6,) + shape[1:]).astype(np.float32), "test_labels": y[:6],
              "val_images": rng.integers(0, 256, (3,) + shape[1:], dtype=np.uint8), "val_labels": y[:3]}
    if label_shape == "Nx1":
        arrays.update({k: v[:, None] for k, v in arrays.items() if k.endswith("labels")})
    np.savez(tmp_path / "med.npz", **arrays)
    ds = load_dataset(str(tmp_path / "med.npz"))
    assert ds.train_x.shape == (12,) + shape[1:] and ds.train_x.dtype == np.uint8
    assert np.array_equal(ds.train_x, arrays["train_images"]) and np.array_equal(ds.val_x, arrays["val_images"])
    assert ds.test_x.shape == (6,) + shape[1:] and ds.val_y.tolist() == [0, 1, 2] and ds.info.classes == ("0", "1", "2")
    assert np.array_equal(ds.test_x, np.round(arrays["test_images"] * 255).astype(np.uint8))  # 0..1 floats scaled


# --- errors -----------------------------------------------------------------------------------------------


def test_unknown_name_and_missing_path():
    from tl_engine.data.bundled import load_dataset

    with pytest.raises(DataError, match="Unknown dataset 'cifar'.*fashion-mnist.*textures"):
        load_dataset("cifar")
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("/no/such/folder")
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("missing.zip")


def test_unreadable_images_are_skipped_and_counted(tmp_path):
    root = make_folder(tmp_path / "pets")
    (root / "dogs" / "broken.png").write_bytes(b"not a png")
    (root / "cats" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    ds = load_dataset(str(root))
    assert ds.skipped == 2 and len(ds.train_y) + len(ds.val_y) + len(ds.test_y) == 10
    assert ds.skipped_reasons[0] == "2 files: not PNG/JPEG/BMP/GIF/WebP, or damaged"


def test_class_folder_without_readable_images(tmp_path):
    root = make_folder(tmp_path / "pets")
    (root / "birds").mkdir()
    (root / "birds" / "a.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match="'birds' has no readable images"):
        load_dataset(str(root))


def test_all_unreadable_or_single_class(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / "bad" / cls).mkdir(parents=True)
        (tmp_path / "bad" / cls / "x.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match="no readable images"):
        load_dataset(str(tmp_path / "bad"))
    for i in range(3):
        png(tmp_path / "one" / "only" / f"{i}.png", i)
    with pytest.raises(DataError, match="at least 2"):
        load_dataset(str(tmp_path / "one"))
    for i in range(3):
        png(tmp_path / "small" / "a" / f"{i}.png", i)
    for i in range(2):
        png(tmp_path / "small" / "b" / f"{i}.png", i)
    with pytest.raises(DataError, match="'b' has only 2 readable image.*at least 3"):
        load_dataset(str(tmp_path / "small"))


def good_npz() -> dict[str, np.ndarray]:
    y = np.array([0, 1] * 3)
    return {"train_images": np.zeros((6, 8, 8), np.uint8), "train_labels": y,
            "test_images": np.zeros((6, 8, 8), np.uint8), "test_labels": y}


@pytest.mark.parametrize("change, message", [
    ({"train_labels": None, "test_images": None}, "missing train_labels, test_images"),
    ({"train_labels": np.array([0, 1, 0])}, "6 images but train_labels has 3"),
    ({"test_images": np.zeros((6, 8, 8, 2), np.uint8)}, r"shape \(6, 8, 8, 2\)"),
    ({"train_images": np.zeros((6, 8, 9), np.uint8)}, "differ in size"),
    ({"test_labels": np.zeros((6, 4), np.int64)}, "multi-label"),
    ({"test_labels": np.zeros(6, np.int64)}, "no images of class"),
    ({"train_labels": np.array([0, 1, 0, 0, 0, 0])}, "class '1' has only 1 training image.*at least 2"),
])
def test_bad_npz(tmp_path, change, message):
    arrays = {**good_npz(), **change}
    np.savez(tmp_path / "bad.npz", **{k: v for k, v in arrays.items() if v is not None})
    with pytest.raises(DataError, match=message):
        load_dataset(str(tmp_path / "bad.npz"))


def test_transparent_png_becomes_white_and_damaged_zip_entry_is_skipped(tmp_path):
    root = make_folder(tmp_path / "pets")
    Image.new("RGBA", (10, 10), (0, 0, 0, 0)).save(root / "cats" / "clear.png")
    data = bytearray(zip_bytes(root))
    at = data.find(b"pets/dogs/4.png") + len(b"pets/dogs/4.png")  # first copy: the local header, then the data
    data[at + 40] ^= 0xFF  # corrupt the compressed bytes: the CRC check fails when read
    ds = load_upload("pets.zip", bytes(data))
    assert ds.skipped == 1 and len(ds.train_y) + len(ds.val_y) + len(ds.test_y) == 10
    assert ds.skipped_reasons[0] == "1 file: damaged zip entry (could not be unpacked)"
    assert int(np.concatenate([ds.train_x, ds.val_x, ds.test_x]).max()) == 255  # the transparent image is white
