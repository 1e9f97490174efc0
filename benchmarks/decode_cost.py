"""What decoding one image costs, by format and mode: the measurements behind ``images.decode_cost``.

Each case generates one image and decodes it with ``tl_engine.data.images.decode`` in a FRESH Python process,
with the per-image cost cap lifted (``--capped`` keeps it), and records the peak RSS growth over the RSS just
before the decode (VmHWM, reset with clear_refs) per pixel and per row, and the CPU seconds. Writes
benchmarks/results/decode_cost.json and prints a table.

    python -m benchmarks.decode_cost [--capped]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]
CASES = [*[("png", 4000, 4000, m) for m in ("L", "1", "RGB", "RGBA", "LA", "P", "I;16")], ("gif", 4000, 4000, "P"),
         ("bmp", 4000, 4000, "RGB"), ("bmp", 4000, 4000, "P"), ("jpeg", 4000, 4000, "RGB"),
         ("jpeg", 4000, 4000, "CMYK"),
         ("webp", 3000, 3000, "RGB"), ("webp", 3000, 3000, "RGBA"), ("webp", 2400, 2400, "RGBA"),
         ("webpbomb", 6324, 6324, "RGBA"), ("flatpng", 1, 10_000_000, "L"), ("flatpng", 1, 40_000_000, "L"),
         ("flatpng", 10_000_000, 1, "L")]

PROBE = """
import io, json, resource, sys, time
import numpy as np
from PIL import Image
from benchmarks import hostile_images as hi
from tl_engine.data import images
kind, w, h, mode, capped = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5] == "1"
if not capped:
    images.MAX_DECODE_BYTES = images.MAX_IMAGE_PIXELS = 2**40
    Image.MAX_IMAGE_PIXELS = None
if kind == "webpbomb":
    data = hi.webp_bomb(w)
elif kind == "flatpng":
    data = hi.flat_png(w, h)
else:
    im = Image.new(mode, (w, h), 0)
    if mode == "P":
        im.putpalette(list(np.random.default_rng(0).integers(0, 255, 768)))
        im.info["transparency"] = 0
    buf = io.BytesIO()
    im.save(buf, kind.upper(), **({"lossless": True, "method": 0} if kind == "webp" else {}))
    data = buf.getvalue()
    del im
before = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize()
open("/proc/self/clear_refs", "w").write("5")
r0 = resource.getrusage(resource.RUSAGE_SELF)
try:
    out = "decoded to " + "x".join(map(str, images.decode(data).shape))
except images.Skip as s:
    out = "skipped: " + str(s)[:40]
r1 = resource.getrusage(resource.RUSAGE_SELF)
hwm = next(int(x.split()[1]) * 1024 for x in open("/proc/self/status") if x.startswith("VmHWM"))
g = hwm - before
print(json.dumps({"file_bytes": len(data), "outcome": out, "growth_mb": round(g / 2**20, 1),
                  "bytes_per_pixel": round(g / (w * h), 2), "bytes_per_row": round(g / h, 1),
                  "estimate_mb": round(images.decode_cost(w, h, mode, "WEBP" if "webp" in kind else kind.upper())
                                       / 2**20, 1),
                  "cpu_s": round(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime, 3)}))
"""


def main() -> int:
    capped = "--capped" in sys.argv
    rows = []
    for kind, w, h, mode in CASES:
        r = subprocess.run([sys.executable, "-c", PROBE, kind, str(w), str(h), mode, "1" if capped else "0"],
                           capture_output=True, text=True, cwd=ROOT, timeout=600,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
        row = {"format": kind, "width": w, "height": h, "mode": mode,
               **(json.loads(r.stdout) if r.returncode == 0 else {"outcome": "CRASH " + r.stderr[-200:]})}
        rows.append(row)
        print(f"{kind:8s} {w:>8} x {h:<8} {mode:5s} {row.get('growth_mb', '-'):>7} MB  (estimate "
              f"{row.get('estimate_mb', '-'):>7})  {row.get('bytes_per_pixel', '-'):>6} B/px  "
              f"{row.get('cpu_s', '-'):>6} s CPU  {row['outcome']}", flush=True)
    RESULTS.mkdir(exist_ok=True)
    name = "decode_cost_capped.json" if capped else "decode_cost.json"
    (RESULTS / name).write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "capped": capped,
                                            "load_average": round(os.getloadavg()[0], 1), "rows": rows}, indent=1))
    under = [r for r in rows if "growth_mb" in r and r["growth_mb"] > r["estimate_mb"] + 8]
    print(f"\ncases over their estimate (+8 MB slack): {[(r['format'], r['mode']) for r in under] or 'none'}")
    return 1 if under else 0


if __name__ == "__main__":
    sys.exit(main())
