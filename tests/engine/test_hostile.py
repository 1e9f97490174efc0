"""Hostile and broken user files: each gives a clear DataError or a counted skip, never another exception,
and (slow tests) the peak memory of loading it in a fresh process stays bounded."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from benchmarks import hostile_files as hf
from tl_engine.data import images, userzip
from tl_engine.data import user as datasets_user
from tl_engine.data.user import load_path, load_upload
from tl_engine.data.usersplit import split_indices
from tl_engine.errors import DataError

ROOT = Path(__file__).resolve().parents[2]
SMALL_BOMB = 48 * hf.MB  # in-process tests: enough to be over no cap by accident, quick to generate


def skipped(path: Path, n: int, reason: str):
    """Load ``path``: it must succeed with ``n`` skipped files, one reason line containing ``reason``."""
    ds = load_path(path)
    assert ds.skipped == n, ds.skipped_reasons
    assert any(reason in r for r in ds.skipped_reasons), ds.skipped_reasons
    assert len(ds.train_y) and len(ds.val_y) and len(ds.test_y)
    return ds


@pytest.mark.parametrize("method, name", [(zipfile.ZIP_BZIP2, "bzip2"), (zipfile.ZIP_LZMA, "LZMA")])
def test_bzip2_and_lzma_bombs_with_lying_sizes_are_skipped_unread(tmp_path, method, name):
    path = hf.lying_bomb(tmp_path, method, SMALL_BOMB)
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo("pets/cats/bomb.png").file_size == 1000  # the lie is in place
    skipped(path, 1, f"1 file: zip entry compressed with {name} (only stored or deflate")


def test_garbage_lzma_and_entry_past_eof_are_skipped(tmp_path):
    skipped(hf._garbage_lzma(tmp_path), 1, "LZMA")
    skipped(hf._past_eof(tmp_path), 1, "1 file: damaged zip entry")


def test_deflate_entries_are_read_with_a_cap_not_their_declared_size(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "MAX_FILE_BYTES", 4 * hf.MB)
    monkeypatch.setattr(userzip, "MAX_FILE_BYTES", 4 * hf.MB)
    skipped(hf.honest_deflate(tmp_path, 16 * hf.MB), 1, "larger than 4 MB")
    # Declares 1,000 bytes and holds 16 MB: the stream stops at the declared size and the CRC fails.
    skipped(hf.lying_deflate(tmp_path, 16 * hf.MB), 1, "damaged zip entry")


def test_unpacked_total_is_capped_whatever_the_headers_say(tmp_path, monkeypatch):
    monkeypatch.setattr(userzip, "MAX_TOTAL_BYTES", 2000)  # the 8 good PNGs are ~80 bytes each
    path = hf.write_zip(tmp_path / "many.zip", {**hf.good_entries(), **{
        f"pets/cats/big{i}.png": hf.png_bytes(i, (300, 300)) for i in range(40)}})
    with pytest.raises(DataError, match=r"unpacks to more than 0\.0 GB"):
        load_path(path)


def test_one_pixel_png_flood_is_refused_before_decoding(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets_user, "MAX_DECODED_BYTES", 100 * images.STORE_SIZE**2)
    with pytest.raises(DataError, match=r"has 150 images; at most 100 are read \(33 in colour"):
        load_path(hf.png_flood(tmp_path, 150))
    monkeypatch.setattr(userzip, "MAX_ENTRIES", 100)  # the entry count, from the end record, before parsing
    with pytest.raises(DataError, match="lists 150 entries"):
        load_path(tmp_path / "flood_150.zip")


def test_huge_pixel_png_is_refused_from_its_header(tmp_path, monkeypatch):
    path = hf.folder_with(tmp_path, "px", {"cats/huge.png": hf.huge_png(9000)})  # 81 MP
    skipped(path, 1, "1 file: larger than 40 megapixels")
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 1000)  # below Pillow's own guard: our header check
    ds = load_path(hf.folder_with(tmp_path, "px2", {"cats/big.png": hf.png_bytes(3, (40, 40))}))
    assert ds.skipped == 1 and ds.skipped_reasons == ("1 file: larger than 0 megapixels",)


def test_tiff_and_eps_named_png_and_tif_files_are_counted(tmp_path, monkeypatch):
    # Pillow must never be asked to run Ghostscript: fail loudly if the EPS plugin is reached.
    from PIL import EpsImagePlugin

    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", lambda self: pytest.fail("EPS decoder ran"))
    path = hf.folder_with(tmp_path, "fakes", {"cats/t.png": hf.tiff_bytes(), "dogs/e.png": hf.EPS,
                                              "dogs/scan.tif": hf.tiff_bytes(), "cats/notes.txt": b"hi"})
    ds = skipped(path, 3, "2 files: not PNG/JPEG/BMP/GIF/WebP (TIFF is not supported")
    assert "1 file: not PNG/JPEG/BMP/GIF/WebP (EPS is not supported; save as PNG or JPEG)" in ds.skipped_reasons
    assert "1 file: not images (ignored, e.g. notes.txt)" in ds.skipped_reasons
    assert len(ds.train_y) + len(ds.val_y) + len(ds.test_y) == 8  # every good image is still there


def test_backslash_names_map_to_classes_and_unsafe_names_are_refused(tmp_path):
    ds = load_path(hf.make_all(tmp_path)["backslash entry names"]())
    assert ds.info.classes == ("cats", "dogs") and ds.skipped == 0
    for bad in ("..\\evil.png", "C:\\evil.png", "/abs.png"):
        data = hf.write_zip(tmp_path / "bad.zip", {**hf.good_entries(), bad: b"x"}).read_bytes()
        with pytest.raises(DataError, match="unsafe entry"):
            load_upload("bad.zip", data)


def test_links_are_never_followed(tmp_path):
    ds = load_path(hf._symlinked(tmp_path))
    assert ds.skipped == 0 and len(ds.train_y) + len(ds.val_y) + len(ds.test_y) == 8
    assert set(ds.skipped_reasons) == {"1 file: links (not followed; copy the file instead)",
                                       "1 file: links to folders (not followed)"}


def test_not_a_zip_and_empty_upload(tmp_path):
    for data in (b"", b"hello", b"PK\x03\x04" + bytes(100)):
        with pytest.raises(DataError, match="not a readable .zip"):
            load_upload("x.zip", data)
    with pytest.raises(DataError, match="0 class folder"):
        load_upload("x.zip", b"PK\x05\x06" + bytes(18))  # a valid, empty zip


@pytest.mark.parametrize("name, message", [
    (".npy renamed .npz", "single .npy array renamed .npz"),
    ("npz member not npy", "train_images is not a readable numpy array"),
    ("npz declaring 3 GiB", r"declares 3\.0 GB of arrays; at most 768 MB"),
    ("npz labels inf", "whole finite numbers"),
    ("npz labels 1e30", "values up to 1e\\+30"),
    ("npz pickled objects", "pickled data is never loaded"),
])
def test_bad_npz_files_give_a_clear_message(tmp_path, name, message):
    with pytest.raises(DataError, match=message):
        load_path(hf.make_all(tmp_path)[name]())


def test_npz_checks_shapes_and_sizes_from_headers(tmp_path):
    y = np.arange(4) % 2
    cases = {
        "truncated": ({"train_labels": y, "test_images": np.zeros((4, 8, 8), np.uint8), "test_labels": y},
                      {"train_images": ((4, 8, 8), "u1", 100)}, "fewer bytes than its header declares"),
        "too many": ({"train_labels": y, "test_images": np.zeros((4, 8, 8), np.uint8), "test_labels": y},
                     {"train_images": ((10**6, 8, 8), "u1", 0)}, "at most 250,000 images"),
        "complex": ({"train_images": np.zeros((4, 8, 8), np.complex64), "train_labels": y,
                     "test_images": np.zeros((4, 8, 8), np.uint8), "test_labels": y}, {}, "has type complex64"),
        "nan": ({"train_images": np.full((4, 8, 8), np.nan), "train_labels": y,
                 "test_images": np.zeros((4, 8, 8), np.uint8), "test_labels": y}, {}, "NaN or infinite"),
    }
    for name, (arrays, big, message) in cases.items():
        with pytest.raises(DataError, match=message):
            load_path(hf.write_npz(tmp_path / f"{name}.npz", arrays, big=big))


def test_npz_unused_members_are_never_read_and_float64_is_streamed(tmp_path):
    ds = load_path(hf.write_npz(tmp_path / "u.npz", hf.good_npz_arrays(), big={"junk": ((10**9,), "u1", 0)}))
    assert len(ds.train_y) == 10 and len(ds.val_y) == 2  # validation carved from train: 1 per class
    n = 3000  # > one 16 MB chunk of float64 rows: the streamed conversion crosses chunk boundaries
    x = (np.arange(n * 28 * 28) % 256 / 255.0).reshape(n, 28, 28)
    ds = load_path(hf.write_npz(tmp_path / "f.npz", {"train_images": x, "train_labels": np.arange(n) % 2,
                                                    "test_images": x[:4], "test_labels": np.arange(4) % 2}))
    keep, val = split_indices(np.arange(n) % 2, ("0", "1"), ("val",), "f.npz")  # the same seeded carve
    expected = np.round(x * 255).astype(np.uint8)
    assert np.array_equal(ds.train_x, expected[keep]) and np.array_equal(ds.val_x, expected[val])


# --- peak memory in a fresh process (CLI-style load) ------------------------------------------------------

MEASURE = """
import json, resource, sys
from pathlib import Path
from tl_engine.data.user import load_path
import tl_engine.data.user  # its imports (PIL) are not part of a load
from tl_engine.errors import DataError
from tl_engine.data.usersplit import split_indices
# The RSS now, and the peak reset to it (Linux: clear_refs 5 resets VmHWM): an import's transient peak must
# neither hide nor inflate the load's own growth.
before = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize() // 1024
open("/proc/self/clear_refs", "w").write("5")
try:
    ds = load_path(Path(sys.argv[1]))
    out = {"ok": True, "skipped": ds.skipped, "reasons": list(ds.skipped_reasons)}
except DataError as e:
    out = {"ok": False, "message": str(e)}
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
out["growth_mb"] = (peak - before) / 1024
print(json.dumps(out))
"""


def measure(path: Path) -> dict:
    """Load ``path`` in a fresh interpreter: outcome and peak RSS growth (MB) over the imports."""
    r = subprocess.run([sys.executable, "-c", MEASURE, str(path)], capture_output=True, text=True, cwd=ROOT,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]  # any other exception is a traceback: a failure
    return json.loads(r.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bzip2 bomb (declares 1 KB)", "lzma bomb (declares 1 KB)", "honest deflate entry",
                                  "lying deflate entry", "13000x13000 PNG", "npz declaring 3 GiB",
                                  "npz float64 bomb", "npz unused members"])
def test_peak_memory_of_hostile_loads_is_bounded(tmp_path, name):
    out = measure(hf.make_all(tmp_path, bomb=1024 * hf.MB)[name]())  # 1 GiB bombs: cheap to make
    assert out["growth_mb"] < 2048, out
    assert out["ok"] or "GB" in out["message"], out


@pytest.mark.slow
def test_peak_memory_of_a_one_pixel_png_flood_is_bounded(tmp_path):
    out = measure(hf.png_flood(tmp_path, 49_999))  # over the decoded cap (49,152 grey), under the entry cap
    assert not out["ok"] and "at most 49,152 are read" in out["message"] and out["growth_mb"] < 500, out
    out = measure(hf.png_flood(tmp_path, 25_000))  # grey: read, and the copies into one array give memory back
    assert out["ok"] and out["growth_mb"] < 600, out
