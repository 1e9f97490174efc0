"""One user image file -> one small uint8 array, or a short reason why not (hostile files are normal input).

Only the formats a browser shows are opened (PNG, JPEG, BMP, GIF, WebP), named explicitly so that Pillow's
content sniffing never runs another decoder (an EPS named .png would otherwise start Ghostscript).

A small file can ask for a huge decode (a 34-byte lossless WebP is 40 megapixels of RGBA; a 1 × 40,000,000 PNG
is 40 million rows), so the cost is bounded by the largest intermediate, not by the file size:

1. The header is read first (``Image.open`` decodes nothing; a WebP's size is read by hand, because Pillow's
   WebP decoder allocates its canvas when the file is opened). A JPEG is decoded at 1/2, 1/4 or 1/8 scale
   (``Image.draft``), as small as still covers twice the size it is shrunk to.
2. :func:`decode_cost` estimates the peak bytes of decoding and shrinking it from its size, mode and format
   (bytes per pixel measured for each: docs/limits.md); above MAX_DECODE_BYTES the file is skipped undecoded.
3. The one full-size decode is shrunk at once: centre square cut and reduced by an integer factor in one step
   (``Image.reduce`` with a box), then converted and resized to STORE_SIZE at that small size.
4. At most MAX_CONCURRENT_DECODES images decode at once in the whole process (:data:`DECODE_SLOTS`), whoever
   asks (uploads in several tabs, the camera builder, "Try your photo"), and a :class:`PixelBudget` bounds the
   pixels one upload may decode in all.
"""

from __future__ import annotations

import io
import struct
import threading

import numpy as np
from PIL import Image

from ..errors import DataError
from .memory import trim_heap

STORE_SIZE = 128  # pixels; larger than any resolution a CPU race uses, small enough for thousands of images
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")  # what Pillow may decode; never EPS (Ghostscript), TIFF, PSD...
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}  # files we try to open
# Image files we recognise but do not open: counted and named in the skip reason instead of silently ignored.
UNSUPPORTED_EXTS = {".tif": "TIFF", ".tiff": "TIFF", ".heic": "HEIC", ".heif": "HEIC", ".eps": "EPS",
                    ".ps": "PostScript", ".svg": "SVG", ".psd": "PSD", ".ico": "ICO", ".pdf": "PDF",
                    ".avif": "AVIF", ".jp2": "JPEG 2000", ".dng": "camera RAW", ".cr2": "camera RAW",
                    ".nef": "camera RAW", ".dcm": "DICOM"}
MAX_IMAGE_PIXELS = 40_000_000  # width × height from the header, whatever the format (after a JPEG's draft scale)
MAX_FILE_BYTES = 64 * 2**20  # one image file; phone photos are 2-10 MB, a 64 MB PNG is not a photo
MAX_DECODE_BYTES = 100 * 2**20  # estimated peak memory of decoding one image (decode_cost), checked first
MAX_UPLOAD_PIXELS = 400_000_000  # pixels one upload may decode, all images together (after JPEG draft scaling)
MAX_CONCURRENT_DECODES = 2  # images decoding at once in this process, all sessions together
DECODE_SLOTS = threading.BoundedSemaphore(MAX_CONCURRENT_DECODES)
# Pillow's own guard warns above MAX_IMAGE_PIXELS and raises above twice that. Lower it (never raise it) as a
# second line of defence behind the explicit header check in decode(); it is process-wide, hence only lowered.
Image.MAX_IMAGE_PIXELS = min(Image.MAX_IMAGE_PIXELS or MAX_IMAGE_PIXELS, MAX_IMAGE_PIXELS)

# Peak bytes per pixel of decoding and shrinking one image, by mode once opened: the decoded image, plus a
# full-size working copy for modes converted first (1, P, 16-bit, CMYK), plus the premultiplied copy Pillow
# makes to shrink alpha. A WebP costs ~16-17 whatever its mode (libwebp's canvases and the bytes Pillow
# keeps). Each measured as RSS growth of a fresh process (docs/limits.md#what-one-image-may-cost).
_PEAK_BYTES_PER_PIXEL = {"1": 2, "L": 1, "P": 9, "PA": 9, "LA": 8, "RGB": 4, "RGBA": 8, "I;16": 6, "I;16B": 6,
                         "I;16L": 6, "I": 4, "F": 4, "CMYK": 8, "YCbCr": 8}
_WEBP_BYTES_PER_PIXEL = 18  # measured 16.0 at 9 MP, 17.2 at 5.8 MP
_ROW_BYTES = 24  # Pillow keeps an 8-byte pointer per row in each of up to three full-size copies
_COLUMN_BYTES = 16  # a decoder's previous and current row, up to 8 bytes per pixel each (a 10 M × 1 PNG: 3 B/px)
_TRIM_ABOVE = 16 * 2**20  # after decoding an image that cost more, freed heap memory is handed back
_REDUCIBLE = ("L", "LA", "RGB", "RGBA", "I", "F")  # modes Image.reduce takes; others are converted first
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}  # EXIF orientation -> the transpose that undoes it

# The first bytes of formats we refuse, to tell the user what the file really is.
_MAGIC = ((b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"%!PS", "EPS"), (b"\xc5\xd0\xd3\xc6", "EPS"),
          (b"%PDF", "PDF"), (b"8BPS", "PSD"), (b"\x93NUMPY", "a numpy .npy array"), (b"PK\x03\x04", "a zip"))
NOT_SUPPORTED = "not PNG/JPEG/BMP/GIF/WebP"
TOO_BIG = (f"too large to decode (over {MAX_DECODE_BYTES // 2**20} MB while decoding: a PNG, GIF or BMP over "
           f"about {MAX_DECODE_BYTES // 9_000_000}-{MAX_DECODE_BYTES // 4_000_000} megapixels, a WebP over about "
           f"{MAX_DECODE_BYTES // 18_000_000}; save it smaller, or as JPEG)")


class Skip(Exception):  # noqa: N818 (a reason, not an error: the file is counted and the load goes on)
    """Why one file was skipped: a short reason shared by all files skipped the same way."""


class PixelBudget:
    """Pixels decoded for one upload, all images together; past ``limit`` the whole load stops."""

    def __init__(self, source: str, limit: int | None = None) -> None:
        self.source, self.used, self.images = source, 0, 0
        self.limit = MAX_UPLOAD_PIXELS if limit is None else limit

    def spend(self, pixels: int) -> None:
        if self.used + pixels > self.limit:
            raise DataError(
                f"{self.source}: stopped after reading {self.images:,} images: together with the next they hold "
                f"more than {self.limit / 1e6:,.0f} megapixels, the most one upload may decode (each image is "
                f"shrunk to {STORE_SIZE}×{STORE_SIZE} anyway). Resize the images to about 500 pixels wide, or "
                "upload fewer.")
        self.used += pixels
        self.images += 1


def unsupported_reason(kind: str) -> str:
    return f"{NOT_SUPPORTED} ({kind} is not supported; save as PNG or JPEG)"


def sniff(data: bytes) -> str | None:
    """The name of a refused format from its first bytes, or None."""
    head = data[:16]
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        return "HEIC/AVIF"
    return None


def webp_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a WebP's first chunk (VP8, VP8L or VP8X), or None if it is not one of those."""
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    kind = data[12:16]
    if kind == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if kind == b"VP8L" and data[20] == 0x2F:
        bits = struct.unpack("<L", data[21:25])[0]
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8X":
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


def decode_cost(width: int, height: int, mode: str, fmt: str) -> int:
    """Estimated peak bytes of decoding and shrinking a ``width`` × ``height`` image of ``mode`` and ``fmt``."""
    per_pixel = _WEBP_BYTES_PER_PIXEL if fmt == "WEBP" else _PEAK_BYTES_PER_PIXEL.get(mode, 9)
    return width * height * per_pixel + height * _ROW_BYTES + width * _COLUMN_BYTES


def decode(data: bytes, size: int = STORE_SIZE, budget: PixelBudget | None = None) -> np.ndarray:
    """One image file -> uint8 size×size (grey) or size×size×3 (colour), centre square crop.

    Bounded as :func:`open_square` (which see); ``budget`` (one per upload) is charged the decoded pixels.

    Raises:
        Skip: with a short reason (wrong format, too large to decode, damaged) when the file cannot be used.
        DataError: ``budget`` is spent: the whole upload stops.
    """
    small = open_square(data, 2 * size, budget)  # at least 2× size where the image has it, for LANCZOS
    try:
        a = np.asarray(small.resize((size, size), Image.Resampling.LANCZOS) if small.size != (size, size)
                       else small, dtype=np.uint8)
    except Exception as e:  # noqa: BLE001 (a decoder error can surface on first use)
        raise Skip("damaged image data (could not be decoded)") from e
    # Grey pictures saved as RGB (common for scans and X-rays) stay grey: 3x less memory, same information.
    if a.ndim == 3 and np.abs(a.astype(np.int16) - a[..., :1]).max() <= 8:
        a = np.ascontiguousarray(a[..., 0])
    return a


def open_square(data: bytes, side: int, budget: PixelBudget | None = None) -> Image.Image:
    """The upright centre square of an image file, mode L or RGB (transparent pixels white), reduced by an
    integer factor while decoding to between ``side`` and 2×``side`` pixels a side (kept as it is if smaller).

    Every check runs on the header first (file size, pixels, :func:`decode_cost`); the decode waits for one of
    the process's DECODE_SLOTS. Raises Skip (unusable file) or DataError (``budget`` spent).
    """
    if len(data) > MAX_FILE_BYTES:
        raise Skip(f"larger than {MAX_FILE_BYTES // 2**20} MB")
    with DECODE_SLOTS:
        im = _open_checked(data, side, budget)
        big = decode_cost(*im.size, im.mode, im.format or "") > _TRIM_ABOVE
        try:
            orientation = _orientation(im)
            small = _grey_or_rgb(_reduce_square(im, side))
            if orientation in _TRANSPOSE:  # after the crop: the centre square of a rotated photo is the rotated one
                small = small.transpose(_TRANSPOSE[orientation])
            small.load()
        except Exception as e:  # noqa: BLE001 (truncated data, bad chunks, decoder errors: one bad file)
            raise Skip("damaged image data (could not be decoded)") from e
        finally:
            del im
            if big:  # its full-size buffers are freed: give them back, or each thread's heap keeps them
                trim_heap()
        return small


def _open_checked(data: bytes, side: int, budget: PixelBudget | None) -> Image.Image:
    """The opened (not decoded) image, after every header check; a JPEG set to decode at a reduced scale."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":  # before Image.open: its decoder allocates the canvas
        header = webp_size(data)
        if header is None:
            raise Skip(f"{NOT_SUPPORTED}, or damaged")
        if decode_cost(*header, "RGBA", "WEBP") > MAX_DECODE_BYTES:
            raise Skip(TOO_BIG)
    try:
        im = Image.open(io.BytesIO(data), formats=list(FORMATS))
    except Image.DecompressionBombError as e:  # Pillow's own guard (see above) fired first
        raise Skip(f"larger than {MAX_IMAGE_PIXELS // 1_000_000} megapixels") from e
    except Exception as e:  # noqa: BLE001 (Pillow raises many types on hostile headers; all mean "unusable")
        kind = sniff(data)
        raise Skip(unsupported_reason(kind) if kind else f"{NOT_SUPPORTED}, or damaged") from e
    if im.format == "JPEG":
        im.draft(im.mode if im.mode in ("L", "RGB") else None, (side, side))  # decode at 1/2, 1/4 or 1/8 scale
    w, h = im.size  # from the header (and draft): nothing is decoded yet
    if w < 1 or h < 1:
        raise Skip("empty image (0 pixels)")
    if w * h > MAX_IMAGE_PIXELS:
        raise Skip(f"larger than {MAX_IMAGE_PIXELS // 1_000_000} megapixels")
    if decode_cost(w, h, im.mode, im.format or "") > MAX_DECODE_BYTES:
        raise Skip(TOO_BIG)
    if budget is not None:
        budget.spend(w * h)
    return im


def _orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(0x0112, 1))  # phone photos store their rotation in EXIF
    except Exception:  # noqa: BLE001 (hostile EXIF: keep the pixels as stored)
        return 1


def _reduce_square(im: Image.Image, side: int) -> Image.Image:
    """Decode once at full size and cut the centre square down by an integer factor in the same step."""
    im.load()
    if im.mode not in _REDUCIBLE:  # 1, P, 16-bit, CMYK...: one full-size working copy (counted in decode_cost)
        im = _working_mode(im)
    w, h = im.size
    f = max(1, min(w, h) // side)
    s = min(w, h) // f * f
    box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
    return im.reduce(f, box) if f > 1 else im.crop(box)


def _working_mode(im: Image.Image) -> Image.Image:
    if im.mode.startswith("I;16"):
        return im.convert("I")
    if im.mode == "1":
        return im.convert("L")
    if "A" in im.mode or "transparency" in im.info:
        return im.convert("RGBA")
    return im.convert("L" if im.mode == "P" and _grey_palette(im) else "RGB")


def _grey_palette(im: Image.Image) -> bool:
    pal = im.getpalette() or []
    return all(pal[i] == pal[i + 1] == pal[i + 2] for i in range(0, len(pal) - 2, 3))


def _grey_or_rgb(im: Image.Image) -> Image.Image:
    if im.mode in ("I", "F"):  # 16-bit or float grey: scale to 0..255, not clip
        a = np.nan_to_num(np.asarray(im, dtype=np.float64))
        top = 65535.0 if a.max() > 255 else 255.0
        return Image.fromarray(np.clip(a * (255.0 / top), 0, 255).astype(np.uint8))
    if im.mode in ("1", "L"):
        return im.convert("L")
    if "A" in im.mode or "transparency" in im.info:  # transparent pixels become white, not black
        rgba = im.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    return im.convert("RGB")
