"""A command's output: its JSON result never lost to a bad path or a full disk, and names printed without
the control characters a hostile file or folder name could send to the terminal."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

from ..store import default_path, os_reason, write_json_atomic

# C0/C1 controls (escape sequences, newlines), bidi overrides and marks: a folder name must not drive the terminal
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def terminal(text: object) -> str:
    """``text`` safe to print: every control character written as its escape (``\\x1b``, ``\\n``, ``\\u202e``)."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], str(text))


def write_result(path: str, obj: dict, ok: int) -> int:
    """Write ``obj`` to ``path`` and return ``ok``; if that fails (after the work: a full disk, a folder that
    went away), write it next to the results store ($TL_RACE_DATA), say where, and return 1. If that fails
    too, print the JSON on standard output: the result is never lost."""
    try:
        write_json_atomic(path, obj)
        print(f"wrote {path}")
        return ok
    except OSError as e:
        why = os_reason(e)
    spare = default_path().parent / f"{Path(path).stem or 'result'}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    try:
        spare.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(spare, obj)
    except OSError as e:
        print(f"error: {path} could not be written ({why}), nor a copy in {spare.parent} ({os_reason(e)}); the "
              "result follows on standard output.", file=sys.stderr)
        print(json.dumps(obj))
        return 1
    print(f"error: {path} could not be written ({why}); the result was written to {spare} instead.",
          file=sys.stderr)
    return 1
