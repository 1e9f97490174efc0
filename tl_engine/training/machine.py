"""What this machine lets a job use, without importing torch (pages import this on their first paint)."""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """How many CPUs this process may run on: its affinity mask, not the machine's count.

    In a container or under ``taskset`` ``os.cpu_count()`` reports every core of the host, and a
    torch thread pool that large oversubscribes the few cores we actually get (slower, not faster).
    """
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS and Windows have no sched_getaffinity
        n = os.cpu_count() or 1
    return max(1, n)
