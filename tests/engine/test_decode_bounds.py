"""Small files with big costs: one image's decode, one upload's pixels, the process's concurrent decodes and the
uploads folder on disk are each bounded, and every bound ends in a skipped-and-counted file or a clear message."""

from __future__ import annotations

import io
import os
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from benchmarks import hostile_files as hf
from benchmarks import hostile_images as hi
from tl_engine.data import images, memory, uploads
from tl_engine.data import user as datasets_user
from tl_engine.data.images import MAX_DECODE_BYTES, TOO_BIG, Skip, decode, decode_cost, webp_size
from tl_engine.data.user import load_upload
from tl_engine.errors import DataError


def no_pillow_open(*_a, **_k):
    raise AssertionError("Image.open ran: the file should have been refused from its header")


def test_a_webp_bomb_is_refused_from_its_header_before_pillow_allocates_a_canvas(monkeypatch):
    data = hi.claimed_webp(6324, 6324)  # what the 34-byte bomb declares: 40 MP, ~700 MB in the old decoder
    assert webp_size(data) == (6324, 6324) and len(data) < 100
    monkeypatch.setattr(images.Image, "open", no_pillow_open)
    with pytest.raises(Skip, match="too large to decode"):
        decode(data)


def test_a_real_webp_bomb_over_the_limit_is_refused_and_one_under_it_is_shrunk(monkeypatch):
    bomb = hi.webp_bomb(1000)  # 1 MP: ~18 MB to decode
    assert webp_size(bomb) == (1000, 1000)
    monkeypatch.setattr(images, "MAX_DECODE_BYTES", 10 * 2**20)
    with pytest.raises(Skip, match="too large to decode"):
        decode(bomb)
    monkeypatch.setattr(images, "MAX_DECODE_BYTES", 20 * 2**20)
    a = decode(bomb)
    assert a.shape == (128, 128) and (a == 255).all()  # fully transparent becomes white, and grey


def test_a_thin_png_is_refused_from_its_header():
    data = hi.flat_png(1, 40_000_000)  # 40 million rows: ~1 GB in the old decoder (a pointer per row per copy)
    assert len(data) < 200_000 and decode_cost(1, 40_000_000, "L", "PNG") > MAX_DECODE_BYTES
    t = time.process_time()
    with pytest.raises(Skip, match="too large to decode"):
        decode(data)
    assert time.process_time() - t < 0.5  # nothing was decoded


def test_the_cost_model_admits_ordinary_photos_and_refuses_what_would_cost_over_100_mb():
    assert decode_cost(4032, 3024, "RGB", "PNG") < MAX_DECODE_BYTES  # a 12 MP phone screenshot
    assert decode_cost(4032, 3024, "RGBA", "PNG") < MAX_DECODE_BYTES
    assert decode_cost(6000, 6000, "RGB", "PNG") > MAX_DECODE_BYTES
    assert decode_cost(3000, 3000, "RGBA", "WEBP") > MAX_DECODE_BYTES  # WebP: libwebp's canvases on top
    assert decode_cost(10_000_000, 1, "L", "PNG") > MAX_DECODE_BYTES  # the decoder's row buffers


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA", "LA", "I;16", "CMYK"])
def test_shrinking_while_decoding_matches_the_full_size_pipeline(mode):
    """reduce(box) then LANCZOS gives what the old full-size exif_transpose + fit gave, within a few levels."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:700, 0:900]
    rgb = np.stack([xx * 255 // 900, yy * 255 // 700, (xx + yy) % 256], -1).astype(np.uint8)
    im = Image.fromarray(rgb)
    if mode == "I;16":
        im = Image.fromarray((yy * 90).astype(np.uint16))
    elif mode == "RGBA":
        im = Image.fromarray(np.dstack([rgb, rng.integers(0, 256, (700, 900), dtype=np.uint8)]))
    else:
        im = im.convert(mode)
    buf = io.BytesIO()
    im.save(buf, "JPEG" if mode == "CMYK" else "PNG")
    ref = ImageOps.fit(Image.open(io.BytesIO(buf.getvalue())).convert(
        "I" if mode == "I;16" else "RGBA" if "A" in mode else "RGB"), (128, 128), Image.Resampling.LANCZOS)
    if mode == "I;16":
        ref = np.asarray(ref, np.float64) * 255 / 65535
    elif "A" in mode:
        ref = np.asarray(Image.alpha_composite(Image.new("RGBA", ref.size, "white"), ref).convert("RGB"), np.float64)
    else:
        ref = np.asarray(ref, np.float64)
    got = decode(buf.getvalue()).astype(np.float64)
    ref = ref if got.ndim == ref.ndim else ref[..., 0] if got.ndim == 2 else ref[..., None]
    assert np.abs(got - ref).mean() < 4, np.abs(got - ref).mean()


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_exif_rotation_is_applied_after_the_shrink(orientation):
    a = np.zeros((400, 600), np.uint8)
    a[:, 300:] = 255  # left black, right white
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(a).save(buf, "JPEG", exif=exif.tobytes())
    ref = np.asarray(ImageOps.fit(ImageOps.exif_transpose(Image.open(io.BytesIO(buf.getvalue()))), (64, 64)),
                     np.float64)
    got = decode(buf.getvalue(), 64).astype(np.float64)
    assert np.abs(got - ref).mean() < 6


def flood_zip(tmp_path: Path, n: int, side: int) -> Path:
    return hi.image_zip(tmp_path / "flood.zip", hi.flat_png(side, side, 9), n, "png")


def test_the_pixels_of_one_upload_are_bounded_and_the_message_says_how_many_were_read(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "MAX_UPLOAD_PIXELS", 5 * 400 * 400 + 10)
    path = flood_zip(tmp_path, 12, 400)
    with pytest.raises(DataError, match=r"flood\.zip: stopped after reading 5 images: .* more than 1 megapixels"):
        load_upload("flood.zip", path.read_bytes())
    monkeypatch.setattr(images, "MAX_UPLOAD_PIXELS", 12 * 400 * 400)
    assert len(load_upload("flood.zip", path.read_bytes()).train_y) > 0  # exactly at the budget: loads


def test_bombs_inside_an_upload_are_skipped_and_counted(tmp_path):
    path = hi.image_zip(tmp_path / "bombs.zip", hi.claimed_webp(6324, 6324), 2, "webp", good=4)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("set/b/thin.png", hi.flat_png(1, 20_000_000))
    ds = load_upload("bombs.zip", path.read_bytes())
    assert ds.skipped == 3 and ds.skipped_reasons == (f"3 files: {TOO_BIG}",)
    assert len(ds.train_y) + len(ds.val_y) + len(ds.test_y) == 8


def test_at_most_two_images_decode_at_once_in_the_process():
    png = hf.png_bytes(50, (64, 64))
    done = threading.Event()
    assert images.DECODE_SLOTS.acquire(timeout=5) and images.DECODE_SLOTS.acquire(timeout=5)  # two busy decodes
    try:
        t = threading.Thread(target=lambda: (decode(png), done.set()), daemon=True)
        t.start()
        assert not done.wait(0.3)  # a third waits for a slot
        images.DECODE_SLOTS.release()
        assert done.wait(5)
    finally:
        images.DECODE_SLOTS.release()
    assert images.DECODE_SLOTS.acquire(blocking=False) and images.DECODE_SLOTS.acquire(blocking=False)
    images.DECODE_SLOTS.release()
    images.DECODE_SLOTS.release()  # both slots free again, none leaked


@pytest.mark.slow  # half a second or more: the edit-run loop stays under 20 s
def test_an_upload_is_stored_compressed(tmp_path):
    data = hf.png_flood(tmp_path, 3000).read_bytes()  # 3,000 one-pixel PNGs: 47 MB as raw 128² arrays
    up = uploads.save_upload("flood.zip", data)
    npz = uploads.uploads_dir() / f"{up.name.removeprefix(uploads.PREFIX)}.npz"
    with zipfile.ZipFile(npz) as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_DEFLATED}
    assert npz.stat().st_size <= 2 * len(data), (npz.stat().st_size, len(data))
    ds = uploads.load(up.name)
    assert ds.train_x.shape[1:] == (128, 128) and len(ds.train_y) + len(ds.val_y) + len(ds.test_y) == 3000


def test_the_uploads_folder_keeps_a_disk_budget_oldest_deleted_first(tmp_path, monkeypatch):
    names = []
    for i in range(3):
        names.append(uploads.save_upload(f"u{i}.zip", hf.write_zip(tmp_path / f"u{i}.zip", hf.good_entries(
            per_class=4 + i)).read_bytes()).name)
    folder = uploads.uploads_dir()
    files = [folder / f"{n.removeprefix(uploads.PREFIX)}.npz" for n in names]
    for age, f in zip((300, 200, 100), files):  # u0 oldest, u2 newest
        os.utime(f, (time.time() - age, time.time() - age))
    sizes = [f.stat().st_size + f.with_suffix(".json").stat().st_size for f in files]
    monkeypatch.setattr(uploads, "MAX_UPLOADS_BYTES", sizes[2] + sizes[1])
    assert uploads.cleanup() == 1
    assert [f.exists() for f in files] == [False, True, True]
    monkeypatch.setattr(uploads, "MAX_UPLOADS_BYTES", 1)  # the newest stays even alone over the budget
    assert uploads.cleanup() == 1 and [f.exists() for f in files] == [False, False, True]
    with pytest.raises(DataError, match="not on this server"):
        uploads.load_meta(names[0])


def test_uploads_being_read_at_once_share_one_memory_pool():
    full = memory.MAX_HELD_BYTES
    memory.reserve(10 * full)  # outside any upload: the CLI never waits, nothing is held
    assert memory.free_bytes() == full
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

    def upload(mine: threading.Event, then: threading.Event | None) -> None:
        with memory.upload_scope():
            memory.reserve(full * 2 // 3)
            mine.set()
            if then is not None:
                assert then.wait(5)

    a = threading.Thread(target=upload, args=(first_in, first_out), daemon=True)
    b = threading.Thread(target=upload, args=(second_in, None), daemon=True)
    a.start()
    assert first_in.wait(5)
    b.start()
    assert not second_in.wait(0.3)  # two thirds + two thirds do not fit: the second waits
    first_out.set()
    assert second_in.wait(5)
    a.join(5)
    b.join(5)
    assert memory.free_bytes() == full  # every reservation given back


def test_a_colour_set_over_the_decoded_cap_stops_at_its_first_colour_image(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets_user, "MAX_DECODED_BYTES", 12 * 128 * 128)  # 12 grey or 4 colour images
    entries = {f"s/{c}/{i}.png": hf.png_bytes(30 * i, (8, 8)) for c in "ab" for i in range(4)}
    assert len(load_upload("grey.zip", hf.write_zip(tmp_path / "g.zip", entries).read_bytes()).train_y)
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, "PNG")
    entries["s/b/red.png"] = buf.getvalue()
    with pytest.raises(DataError, match="has 9 images and they are in colour; at most 4 colour images are read"):
        load_upload("colour.zip", hf.write_zip(tmp_path / "c.zip", entries).read_bytes())
    assert memory.free_bytes() == memory.MAX_HELD_BYTES
    uploads.save_upload("grey.zip", (tmp_path / "g.zip").read_bytes())
    assert memory.free_bytes() == memory.MAX_HELD_BYTES  # the upload's reservation ended with it
