"""How much memory uploads being read at the same moment may hold together, in one server process.

One upload holds its decoded images (up to ``user.MAX_DECODED_BYTES``) from the first decode until it is stored.
Three tabs uploading the largest allowed set at once would hold three times that, so every upload *reserves*
what it may hold (its image count × STORE_SIZE² × 3, at most the pool) before decoding, from one pool of
:data:`MAX_HELD_BYTES` for the whole process, and waits until that fits. Small uploads run side by side; the
largest wait for each other. The reservation lasts until the enclosing :func:`upload_scope` ends (the server
keeps the arrays until they are written); outside any scope (the CLI: one dataset per process) nothing waits.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

MAX_HELD_BYTES = 768 * 2**20  # decoded images held by all uploads being read at once (one largest upload)

_pool = threading.Condition()
_free = [MAX_HELD_BYTES]
_scope: ContextVar[list[int] | None] = ContextVar("upload_scope", default=None)

try:  # glibc only: thousands of small freed arrays otherwise stay resident after they are copied elsewhere
    _MALLOC_TRIM = ctypes.CDLL("libc.so.6").malloc_trim
except (OSError, AttributeError):
    _MALLOC_TRIM = None


@contextmanager
def upload_scope() -> Iterator[None]:
    """Memory reserved inside this block (by :func:`reserve`) is held until the block ends."""
    held: list[int] = []
    token = _scope.set(held)
    try:
        yield
    finally:
        _scope.reset(token)
        if held:
            with _pool:
                _free[0] += sum(held)
                _pool.notify_all()


def reserve(nbytes: int) -> None:
    """Wait until ``nbytes`` (at most the whole pool) fit in the pool, and hold them for the enclosing scope."""
    held = _scope.get()
    if held is None:
        return
    nbytes = min(nbytes, MAX_HELD_BYTES)
    with _pool:
        _pool.wait_for(lambda: _free[0] >= nbytes)
        _free[0] -= nbytes
    held.append(nbytes)


def free_bytes() -> int:
    """What the pool has left now (for tests and benchmarks)."""
    with _pool:
        return _free[0]


def trim_heap() -> None:
    """Hand freed heap memory back to the OS where the C library can (glibc's ``malloc_trim``); else nothing."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
