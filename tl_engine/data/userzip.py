"""Reading a user's .zip without trusting anything it declares (sizes, names, compression, entry count).

A zip is a list of promises: each entry declares its size and compression, and a bomb lies about both. So the
central directory's size is checked before Python parses it, only stored and deflate entries are read (bzip2
and LZMA are inflated by Python in one unbounded call), every entry is read through its decompressing stream
with ``read(cap + 1)``, and the bytes actually read are summed against a budget. Nothing is ever extracted.
"""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import BinaryIO

from ..errors import DataError
from .images import MAX_FILE_BYTES, Skip

MAX_ENTRIES = 50_000  # files and folders in one zip or folder; a class-folder dataset this big is not a demo
MAX_CENTRAL_DIR_BYTES = 32 * 2**20  # ~100 bytes per entry name; Python keeps ~10x that per entry in memory
MAX_TOTAL_BYTES = 2 * 2**30  # bytes actually unpacked from all entries together, whatever their headers say
READABLE = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
_METHOD_NAMES = {zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "LZMA", 9: "deflate64", 93: "zstd", 98: "PPMd"}

Reader = Callable[[], bytes]  # reads one file's bytes, or raises Skip with a reason
Entries = dict[tuple[str, ...], Reader]  # path parts below the root -> its reader


def _directory_size(fp: BinaryIO) -> tuple[int, int] | None:
    """(declared entries, central directory bytes) from the end record, read before zipfile parses anything."""
    fp.seek(0, 2)
    size = fp.tell()
    tail_len = min(size, 22 + 65535)  # the end record plus the longest possible comment
    fp.seek(size - tail_len)
    tail = fp.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return None  # not a zip: zipfile says so in its own words
    entries, cd_size = struct.unpack("<4s4H2LH", tail[at:at + 22])[4:6]
    if (entries == 0xFFFF or cd_size == 0xFFFFFFFF) and at >= 20 and tail[at - 20:at - 16] == b"PK\x06\x07":
        record_at = struct.unpack("<4sLQL", tail[at - 20:at])[2]  # ZIP64: the real counts live elsewhere
        fp.seek(record_at)
        rec = fp.read(56)
        if len(rec) == 56 and rec[:4] == b"PK\x06\x06":
            entries, cd_size = struct.unpack("<4sQ2H2L4Q", rec)[7:9]
    return entries, cd_size


def open_zip(src: BinaryIO, source: str) -> zipfile.ZipFile:
    """A ZipFile whose directory is known to be of sane size and whose entry names are all safe."""
    try:
        declared = _directory_size(src)
        src.seek(0)
        if declared and (declared[0] > MAX_ENTRIES or declared[1] > MAX_CENTRAL_DIR_BYTES):
            raise DataError(f"{source} lists {declared[0]:,} entries ({declared[1]:,} bytes of names); at most "
                            f"{MAX_ENTRIES:,} files are read. Zip a smaller dataset.")
        zf = zipfile.ZipFile(src)
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 (zipfile raises struct, value and OS errors on damaged files)
        raise DataError(f"{source} is not a readable .zip file ({type(e).__name__}: {e}); zip the dataset "
                        "folder again (right-click > Compress, or `zip -r data.zip folder`).") from e
    infos = zf.infolist()
    if len(infos) > MAX_ENTRIES:
        zf.close()
        raise DataError(f"{source} has {len(infos):,} entries; at most {MAX_ENTRIES:,} files are read. "
                        "Zip a smaller dataset.")
    for i in infos:
        parts = entry_parts(i.filename)
        # An absolute name or a ".." would point outside the archive if anyone ever extracted it: refuse.
        if i.filename.startswith(("/", "\\")) or ".." in parts or (parts and parts[0].endswith(":")):
            zf.close()
            raise DataError(f"{source} contains an unsafe entry {i.filename!r} (absolute path or '..'); "
                            "make the zip again from inside the dataset folder.")
    return zf


def entry_parts(name: str) -> tuple[str, ...]:
    """Path parts of an entry name; Windows tools write backslashes, which mean the same as slashes."""
    return tuple(p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("", "."))


class Budget:
    """Bytes actually unpacked so far, across all entries; over MAX_TOTAL_BYTES the whole load stops."""

    def __init__(self, source: str, limit: int = 0) -> None:
        self.source, self.limit, self.used = source, limit or MAX_TOTAL_BYTES, 0

    def spend(self, n: int) -> None:
        self.used += n
        if self.used > self.limit:
            raise DataError(f"{self.source} unpacks to more than {self.limit / 2**30:.1f} GB of files; "
                            "use fewer or smaller images (a few thousand photos are plenty).")


def zip_entries(zf: zipfile.ZipFile, source: str) -> Entries:
    """A capped reader per file entry of an opened (see :func:`open_zip`) zip."""
    budget = Budget(source)
    return {entry_parts(i.filename): (lambda i=i: _read_entry(zf, i, budget))
            for i in zf.infolist() if not i.is_dir() and entry_parts(i.filename)}


def _read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: Budget) -> bytes:
    if info.compress_type not in READABLE:
        method = _METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
        raise Skip(f"zip entry compressed with {method} (only stored or deflate are read; "
                   "re-zip with standard compression)")
    if info.flag_bits & 0x1:
        raise Skip("password-protected zip entry (zip without a password)")
    if info.file_size > MAX_FILE_BYTES:  # the declared size may lie low, never usefully high
        raise Skip(f"larger than {MAX_FILE_BYTES // 2**20} MB")
    try:
        with zf.open(info) as f:
            data = f.read(MAX_FILE_BYTES + 1)  # the stream inflates at most this much, whatever was declared
    except Exception as e:  # noqa: BLE001 (bad CRC, truncated entry, bad deflate data: one damaged file)
        raise Skip("damaged zip entry (could not be unpacked)") from e
    budget.spend(len(data))
    if len(data) > MAX_FILE_BYTES:
        raise Skip(f"larger than {MAX_FILE_BYTES // 2**20} MB")
    return data
