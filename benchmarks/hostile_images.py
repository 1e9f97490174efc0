"""Small image files that are expensive to decode (shared by tests/engine/test_decode_bounds.py and bench_hostile).

Each one is valid: the cost is in what the header honestly asks for. A lossless WebP of one flat colour is a few
dozen bytes for 40 megapixels; a 1 × 40,000,000 PNG is 40 MB of pixels but 40 million rows (Pillow keeps a
pointer per row); a near-empty 40 MP PNG compresses to ~40 KB and a zip of many copies to less than 1 KB each.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from benchmarks.hostile_files import png_flood

WEBP_SIDE = 6324  # 40.0 megapixels: just under the old 40 MP header cap, RGBA (4 bytes per pixel)


def webp_bomb(side: int = WEBP_SIDE) -> bytes:
    """A lossless, fully transparent WebP of side × side pixels (34 bytes at 6324², ~160 MB as RGBA pixels)."""
    buf = io.BytesIO()
    Image.new("RGBA", (side, side), (0, 0, 0, 0)).save(buf, "WEBP", lossless=True, quality=0, method=0)
    return buf.getvalue()


def claimed_webp(width: int, height: int) -> bytes:
    """A real 16×16 lossless WebP whose header claims width × height (what a crafted bomb's header says)."""
    data = bytearray(webp_bomb(16))
    bits = struct.unpack("<L", data[21:25])[0] & ~((1 << 28) - 1)  # keep the alpha and version bits
    data[21:25] = struct.pack("<L", bits | (width - 1) | ((height - 1) << 14))
    return bytes(data)


def flat_png(width: int, height: int, colour: int = 0, rows_per_chunk: int = 4096, rgba: bool = False) -> bytes:
    """A valid 8-bit grey (or RGBA) PNG of width × height pixels, all ``colour``, compressed in row chunks."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">L", len(body)) + kind + body + struct.pack(">L", zlib.crc32(kind + body))
    z = zlib.compressobj(9)
    row = b"\x00" + bytes([colour]) * width * (4 if rgba else 1)  # filter byte + pixels
    block = row * max(1, min(rows_per_chunk, (16 << 20) // len(row)))
    per = len(block) // len(row)
    parts, left = [], height
    while left > 0:
        n = min(per, left)
        parts.append(z.compress(block if n == per else row * n))
        left -= n
    idat = b"".join(parts) + z.flush()
    ihdr = struct.pack(">LLBBBBB", width, height, 8, 6 if rgba else 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def image_zip(path: Path, image: bytes, n: int, ext: str, good: int = 0) -> Path:
    """A deflate zip of ``n`` copies of ``image`` split over two class folders, plus ``good`` small readable
    PNGs per class (so that the upload loads and the bombs are counted as skipped)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for c in "ab":
            for i in range(good):
                zf.writestr(f"set/{c}/good{i}.png", flat_png(24, 24, (50 * i + (120 if c == "b" else 0)) % 256))
        for i in range(n):
            zf.writestr(f"set/{'ab'[i % 2]}/{i}.{ext}", image)
    return path


def colour_flood(path: Path, n: int, seed: int = 0) -> Path:
    """``n`` one-pixel PNGs of different colours in two classes (each a 128 × 128 × 3 array once decoded)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for i in range(n):
            buf = io.BytesIO()
            Image.new("RGB", (1, 1), (i % 256, (i // 256 + seed) % 256, 200)).save(buf, "PNG")
            zf.writestr(f"flood/{'ab'[i % 2]}/{i}.png", buf.getvalue())
    return path


def make_images(root: Path) -> dict[str, Callable[[], Path]]:
    """The costly-image inputs by name (as :func:`benchmarks.hostile_files.make_all`), each a zip under root."""
    return {
        "40 WebP bombs (40 MP each)": lambda: image_zip(root / "webp_bombs.zip", webp_bomb(), 40, "webp", good=4),
        "1 x 40,000,000 PNG": lambda: image_zip(root / "thin.zip", flat_png(1, 40_000_000), 1, "png", good=4),
        "100 near-empty 39.7 MP PNGs": lambda: image_zip(root / "mp_flood.zip", flat_png(6300, 6300), 100, "png",
                                                         good=4),
        "100 RGBA PNGs at the cost cap": lambda: image_zip(root / "rgba_flood.zip", flat_png(
            3500, 3500, 90, rgba=True), 100, "png", good=4),
        "21,000 one-pixel PNGs": lambda: png_flood(root, 21_000),
        "16,384 one-pixel colour PNGs": lambda: colour_flood(root / "colour_flood.zip", 16_384),
    }
