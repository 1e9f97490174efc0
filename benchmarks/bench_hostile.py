"""Hostile user files: what each one gives and how much memory loading it costs.

Generates the hostile set (benchmarks/hostile_files.py) in a temporary folder and loads each file in a fresh
Python process through ``tl_engine.data.bundled.load_dataset(path)`` (what the CLI does), recording the outcome (the
DataError message, or the images loaded and files skipped) and the peak RSS growth over the RSS just before the load.
Writes benchmarks/results/hostile.json and prints a table.

    python -m benchmarks.bench_hostile
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.hostile_files import MB, make_all

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]
BOMB = 1536 * MB  # what each bomb entry really inflates to (the were 3-4 GB; 1.5 GB shows the cap)

LOAD = """
import json, resource, sys, time
from tl_engine.data.bundled import load_dataset
import tl_engine.data.user  # its imports (PIL) are not part of a load
from tl_engine.errors import UserError
# The RSS now, not the peak so far: an import's transient peak must not hide the load's own growth.
before = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize() // 1024
t0 = time.perf_counter()
try:
    ds = load_dataset(sys.argv[1])
    out = {"outcome": "loaded", "images": [len(ds.train_y), len(ds.val_y), len(ds.test_y)],
           "skipped": ds.skipped, "reasons": list(ds.skipped_reasons)}
except UserError as e:
    out = {"outcome": "refused", "message": str(e).replace(sys.argv[1], "<file>")}
out["load_s"] = round(time.perf_counter() - t0, 3)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out["rss_growth_mb"], out["peak_rss_mb"] = round((peak - before) / 1024, 1), round(peak / 1024, 1)
print(json.dumps(out))
"""


def run_one(path: Path) -> dict:
    r = subprocess.run([sys.executable, "-c", LOAD, str(path)], capture_output=True, text=True, cwd=ROOT,
                       timeout=600)
    if r.returncode != 0:  # a traceback: exactly what this benchmark exists to catch
        return {"outcome": "CRASH", "message": r.stderr.strip().splitlines()[-1][:300] if r.stderr else "?"}
    return json.loads(r.stdout)


def main() -> int:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in make_all(Path(tmp), BOMB).items():
            t0 = time.perf_counter()
            path = make()
            size = sum(p.stat().st_size for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file())
            row = {"input": name, "file_kb": round(size / 1024, 1), "generate_s": round(time.perf_counter() - t0, 1),
                   **run_one(path)}
            rows.append(row)
            detail = row.get("message") or f"{row['images']} train/val/test, {row['skipped']} skipped: " + \
                "; ".join(row["reasons"])
            mem = f"{row.get('rss_growth_mb', '-'):>7} MB (peak {row.get('peak_rss_mb', '-'):>6})"
            print(f"{name:28s} {row['file_kb']:>9.1f} KB  {row['outcome']:8s} {mem}  {row.get('load_s', '-'):>6} s  "
                  f"{detail[:100]}", flush=True)
            path.unlink() if path.is_file() else None  # keep the temp folder small: bombs are on disk
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "hostile.json").write_text(json.dumps({"bomb_bytes": BOMB, "rows": rows}, indent=1))
    worst = max(r.get("rss_growth_mb", 0) for r in rows)
    crashes = [r["input"] for r in rows if r["outcome"] == "CRASH"]
    print(f"\nworst peak RSS growth: {worst} MB; crashes: {crashes or 'none'}")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
