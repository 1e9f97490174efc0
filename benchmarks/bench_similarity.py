"""Where the decision guide's "similar to ImageNet" boundary comes from: every fixture and bundled set, scored.

    python -m benchmarks.bench_similarity                      # both backbones, about 5 minutes on 2 cores
    python -m benchmarks.bench_similarity --backbones mobilenet_v2

Two groups are scored with ``tl_engine.inspect.similarity.measure`` (200 train/validation images, seed 0,
nothing cached): ``photos``, the sets of real photos of ImageNet things from :mod:`benchmarks.photo_fixtures`,
which the textbook calls similar data, and ``other``: the medical-scan sets from the same module and every
bundled dataset (digits, clothes, silhouettes, textures), which it does not. Per backbone the boundary is the
middle of the gap between the lowest photo score and the highest other score, rounded to 2 decimals; the
engine's ``SIMILAR_FROM`` is MobileNetV2's (the default backbone), and the script says whether it also
separates the groups' 95 % intervals and the other backbone's scores.

Writes ``benchmarks/results/similarity.json`` and prints the markdown table of docs/datasets.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from benchmarks import photo_fixtures as pf
from tl_engine.data import list_datasets
from tl_engine.inspect import similarity as sim

OUT = Path(__file__).parent / "results" / "similarity.json"
SAMPLE, SEED = 200, 0


def score_sets(backbone: str, folder: Path) -> list[dict]:
    """One row per set: its group, score, interval, the two parts and what ImageNet calls each class."""
    sets = [(n, "photos", str(pf.write(n, folder))) for n in pf.PHOTO_SETS]
    sets += [(n, "other", str(pf.write(n, folder))) for n in pf.SCAN_SETS]
    sets += [(i.name, "other", i.name) for i in list_datasets()]
    rows = []
    for name, group, dataset in sets:
        r = sim.measure(dataset, backbone=backbone, sample=SAMPLE, seed=SEED, use_cache=False)
        d = r.details
        rows.append({"set": name, "group": group, "score": round(r.score, 4), "low": round(d["score_low"], 4),
                     "high": round(d["score_high"], 4), "confidence": round(d["confidence"], 4),
                     "separation": round(d["separation"], 4), "ami": round(d["ami"], 4),
                     "guide": sim.guide_word(r.score), "n_images": r.n_images, "seconds": d["seconds"],
                     "seen_as": {c["class"]: [c["label"], round(c["share"], 2)] for c in d["per_class"]},
                     "source": pf.describe(name) if name in pf.ALL_SETS else "bundled (assets/datasets)"})
        print(f"{backbone:<20}{name:<34}{r.score:.2f} ({d['score_low']:.2f}-{d['score_high']:.2f})  "
              f"conf {d['confidence']:.2f} sep {d['separation']:.2f}  {sim.guide_word(r.score)}", flush=True)
    return rows


def boundary(rows: list[dict]) -> dict:
    """The gap between the groups, the boundary in its middle, and whether the engine's boundary lies in it."""
    photos = [r for r in rows if r["group"] == "photos"]
    other = [r for r in rows if r["group"] == "other"]
    lo, hi = min(r["score"] for r in photos), max(r["score"] for r in other)
    return {"lowest_photo_score": lo, "highest_other_score": hi, "middle": round((lo + hi) / 2, 2),
            "engine_boundary": sim.SIMILAR_FROM, "separates_scores": hi < sim.SIMILAR_FROM <= lo,
            "separates_intervals": max(r["high"] for r in other) < sim.SIMILAR_FROM <= min(r["low"] for r in photos),
            "misplaced": [r["set"] for r in rows if (r["guide"] == "similar") != (r["group"] == "photos")]}


def table(rows: list[dict]) -> str:
    out = ["| set | group | score (95 % interval) | confidence | separation | guide |", "|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: -r["score"]):
        out.append(f"| `{r['set']}` | {r['group']} | {r['score']:.2f} ({r['low']:.2f}–{r['high']:.2f}) | "
                   f"{r['confidence']:.2f} | {r['separation']:.2f} | {r['guide']} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbones", default=",".join(sim.BACKBONES))
    a = ap.parse_args()
    out: dict = {"when": time.strftime("%Y-%m-%d %H:%M"), "sample": SAMPLE, "seed": SEED,
                 "method": sim.METHOD, "method_version": sim.METHOD_VERSION,
                 "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                             "loadavg": os.getloadavg()}, "backbones": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for backbone in a.backbones.split(","):
            rows = score_sets(backbone, Path(tmp))
            out["backbones"][backbone] = {"boundary": boundary(rows), "sets": rows}
            print(json.dumps(out["backbones"][backbone]["boundary"]))
            print(table(rows))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
