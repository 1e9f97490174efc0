"""One user image file -> one small uint8 array, or a short reason why not (hostile files are normal input).

Only the formats a browser shows are opened (PNG, JPEG, BMP, GIF, WebP), named explicitly so that Pillow's
content sniffing never runs another decoder (an EPS named .png would otherwise start Ghostscript). The pixel
count is checked from the header, before any pixel is decoded. Every image is centre-cropped and resized to
STORE_SIZE once, so a thousand-photo upload costs STORE_SIZE² × 3 bytes per photo, not its full size.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps

STORE_SIZE = 128  # pixels; larger than any resolution a CPU race uses, small enough for thousands of images
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")  # what Pillow may decode; never EPS (Ghostscript), TIFF, PSD...
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}  # files we try to open
# Image files we recognise but do not open: counted and named in the skip reason instead of silently ignored.
UNSUPPORTED_EXTS = {".tif": "TIFF", ".tiff": "TIFF", ".heic": "HEIC", ".heif": "HEIC", ".eps": "EPS",
                    ".ps": "PostScript", ".svg": "SVG", ".psd": "PSD", ".ico": "ICO", ".pdf": "PDF",
                    ".avif": "AVIF", ".jp2": "JPEG 2000", ".dng": "camera RAW", ".cr2": "camera RAW",
                    ".nef": "camera RAW", ".dcm": "DICOM"}
MAX_IMAGE_PIXELS = 40_000_000  # width × height from the header; a 40 MP RGBA image decodes to 160 MB
MAX_FILE_BYTES = 64 * 2**20  # one image file; phone photos are 2-10 MB, a 64 MB PNG is not a photo
# Pillow's own guard warns above MAX_IMAGE_PIXELS and raises above twice that. Lower it (never raise it) as a
# second line of defence behind the explicit header check in decode(); it is process-wide, hence only lowered.
Image.MAX_IMAGE_PIXELS = min(Image.MAX_IMAGE_PIXELS or MAX_IMAGE_PIXELS, MAX_IMAGE_PIXELS)

# The first bytes of formats we refuse, to tell the user what the file really is.
_MAGIC = ((b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"%!PS", "EPS"), (b"\xc5\xd0\xd3\xc6", "EPS"),
          (b"%PDF", "PDF"), (b"8BPS", "PSD"), (b"\x93NUMPY", "a numpy .npy array"), (b"PK\x03\x04", "a zip"))
NOT_SUPPORTED = "not PNG/JPEG/BMP/GIF/WebP"


class Skip(Exception):  # noqa: N818 (a reason, not an error: the file is counted and the load goes on)
    """Why one file was skipped: a short reason shared by all files skipped the same way."""


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


def decode(data: bytes, size: int = STORE_SIZE) -> np.ndarray:
    """One image file -> uint8 size×size (grey) or size×size×3 (colour), centre square crop.

    Raises:
        Skip: with a short reason (wrong format, too many pixels, damaged) when the file cannot be used.
    """
    if len(data) > MAX_FILE_BYTES:
        raise Skip(f"larger than {MAX_FILE_BYTES // 2**20} MB")
    try:
        im = Image.open(io.BytesIO(data), formats=list(FORMATS))
    except Image.DecompressionBombError as e:  # Pillow's own guard (see above) fired first
        raise Skip(f"larger than {MAX_IMAGE_PIXELS // 1_000_000} megapixels") from e
    except Exception as e:  # noqa: BLE001 (Pillow raises many types on hostile headers; all mean "unusable")
        kind = sniff(data)
        raise Skip(unsupported_reason(kind) if kind else f"{NOT_SUPPORTED}, or damaged") from e
    with im:
        w, h = im.size  # from the header: nothing is decoded yet
        if w * h > MAX_IMAGE_PIXELS:
            raise Skip(f"larger than {MAX_IMAGE_PIXELS // 1_000_000} megapixels")
        if w < 1 or h < 1:
            raise Skip("empty image (0 pixels)")
        try:
            im.draft(None, (size, size))  # JPEG: decode at a reduced scale, much faster for big photos
            im = ImageOps.exif_transpose(im)  # phone photos store their rotation in EXIF
            im = _grey_or_rgb(im)
            im = ImageOps.fit(im, (size, size), Image.Resampling.LANCZOS)
            a = np.asarray(im, dtype=np.uint8)
        except Exception as e:  # noqa: BLE001 (truncated data, bad chunks, decoder errors: one bad file)
            raise Skip("damaged image data (could not be decoded)") from e
    # Grey pictures saved as RGB (common for scans and X-rays) stay grey: 3x less memory, same information.
    if a.ndim == 3 and np.abs(a.astype(np.int16) - a[..., :1]).max() <= 8:
        a = np.ascontiguousarray(a[..., 0])
    return a


def _grey_or_rgb(im: Image.Image) -> Image.Image:
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16-bit or float grey: scale to 0..255, not clip
        a = np.nan_to_num(np.asarray(im, dtype=np.float64))
        top = 65535.0 if a.max() > 255 else 255.0
        return Image.fromarray(np.clip(a * (255.0 / top), 0, 255).astype(np.uint8))
    if im.mode in ("1", "L"):
        return im.convert("L")
    if "A" in im.mode or "transparency" in im.info:  # transparent pixels become white, not black
        rgba = im.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    return im.convert("RGB")
