"""Benchmarks (`make bench`): each script measures one target and writes its figures to benchmarks/results/."""

import json
from pathlib import Path


def write_results(path: str | Path, out: dict) -> None:
    """Write a benchmark's results as indented JSON (creating the folder) and say where: every bench_* ends here."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")
