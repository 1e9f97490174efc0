"""``python -m tl_engine similarity``: what the ImageNet classifier sees in a dataset, and how similar it is.

Registered on the engine's CLI by :func:`add_similarity_command`; uses only argparse and
:mod:`tl_engine.inspect.similarity`, so it adds no import to ``cli.py``.
"""

from __future__ import annotations

import argparse

from ..inspect import BACKBONES, METHOD, SIMILAR_FROM, Similarity, guide_word, measure
from ..store import check_writable
from .output import terminal, write_result

DESCRIPTION = f"""\
Run the pretrained backbone with its original 1,000-class ImageNet head on a class-balanced sample of the
dataset's train/validation images (never test), at 224 px, and report the most frequent ImageNet labels and a
similarity score in [0, 1]: the {METHOD}.
The decision guide calls a score of {SIMILAR_FROM} or more "similar" to ImageNet, else "different" (the boundary's
basis: docs/datasets.md).
Results are cached in $TL_RACE_DATA/similarity.json (default data/similarity.json), keyed by the images'
content, backbone, sample and seed.
"""

EPILOG = """\
--json writes {"score", "guide": "similar"|"different", "top_labels": [{"label", "share", "examples":
[[split, index], ...]}, ...], "method", "n_images", "details": {"confidence", "separation", "ami", "score_se",
"score_low", "score_high", "per_class", ...}}.

example: python -m tl_engine similarity --dataset fashion-mnist --json sim.json
"""


def add_similarity_command(subparsers: argparse._SubParsersAction) -> None:
    """Register ``similarity`` on the engine's CLI (called by :func:`tl_engine.cli.main.build_parser`)."""
    s = subparsers.add_parser("similarity", help="what ImageNet sees in a dataset, and a similarity score 0..1",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--dataset", required=True,
                   help="bundled name (see `datasets`) or a path: folder/zip of class folders, or a .npz")
    s.add_argument("--backbone", choices=BACKBONES, default="mobilenet_v2",
                   help="(default mobilenet_v2)")
    s.add_argument("--sample", type=int, default=200, help="images to classify, class-balanced (default 200)")
    s.add_argument("--seed", type=int, default=0, help="which images are drawn (default 0)")
    s.add_argument("--json", metavar="PATH", help="write the result as JSON")
    s.add_argument("--no-cache", action="store_true", help="measure again and do not store the result")
    s.set_defaults(func=cmd_similarity)


def format_result(r: Similarity) -> str:
    d = r.details
    rows = [f"similarity to ImageNet: {r.score:.2f}  (95% interval {d['score_low']:.2f}-{d['score_high']:.2f}; "
            f"confidence {d['confidence']:.2f}, separation {d['separation']:.2f}; {r.n_images} images)",
            f"decision guide: {guide_word(r.score)} ({SIMILAR_FROM} or more is similar)",
            "", f"{'ImageNet label':<32}{'share':>7}"]
    rows += [f"{t.label:<32}{t.share:>7.0%}" for t in r.top_labels]
    rows += ["", f"{'class':<24}{'mostly seen as':<32}{'share':>7}"]
    rows += [f"{c['class']:<24}{c['label']:<32}{c['share']:>7.0%}" for c in d.get("per_class", [])]
    return "\n".join(rows)


def to_json(r: Similarity) -> dict:
    """What ``--json`` writes: the measurement and the guide's word for it (the same function the page uses)."""
    d = r.to_dict()
    return {"score": d.pop("score"), "guide": guide_word(r.score), **d}


def cmd_similarity(a: argparse.Namespace) -> int:
    check_writable(a.json)  # before half a minute of work, not after
    result = measure(a.dataset, backbone=a.backbone, sample=a.sample, seed=a.seed, use_cache=not a.no_cache)
    print("\n".join(terminal(line) for line in format_result(result).split("\n")))  # names: no escape codes
    secs = result.details.get("seconds")
    when = "from the cache" if result.details.get("cached") else "measured"
    print(f"\n{result.method}; {when} ({secs:.1f}s of measuring)" if secs is not None else f"\n{result.method}")
    if a.json:
        return write_result(a.json, to_json(result), 0)
    return 0
