"""Benchmarks (`make bench`): each script measures one target and writes its figures to benchmarks/results/."""

import json
import platform
from pathlib import Path


def write_results(path: str | Path, out: dict) -> None:
    """Write a benchmark's results as indented JSON (creating the folder) and say where: every bench_* ends here."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")


def cpu() -> dict:
    """The CPU a figure came from: its model and the kernel path torch picked (e.g. AVX512). Float sums, and so a
    scratch curve, differ between kernel paths (results/float_order.json); platform.processor() is empty on Linux."""
    import torch

    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.exists() else []
    model = next((x.split(":", 1)[1].strip() for x in lines if x.startswith("model name")), platform.processor())
    return {"model": model, "torch_cpu_capability": torch.backends.cpu.get_cpu_capability()}
