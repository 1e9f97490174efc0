"""Hostile class names through tl_ui.safe_text: shown literally, never as markup, on one capped line."""

from __future__ import annotations

import html
import re

import pytest

from tl_ui.safe_text import MAX_CHARS, ZWSP, html_text, md, one_line, plotly_names, plotly_text

HOSTILE = [
    "<a href=x>click</a>",
    '<span style="font-size:90px">big</span>',
    "[link](http://x)",
    "![img](http://x/a.png)",
    "first\nsecond\r\nthird",
    ":smile: and :+1:",
    "x" * 500,
    "\u202eevil\u200f name\u200e",  # right-to-left override and marks
    "www.example.com",
    "me@example.com",
    "https://example.com/a",
    "<https://example.com>",
    ":red[coloured] and $x^2$",
    "**bold** _it_ `code` ~~gone~~",
    "# heading",
    "- item",
    "1. first",
    "> quote",
    "%{x} &amp; &lt;b&gt;",
    "tab\there\x00nul\x1b[31m",
]
EMOJI = re.compile(r":\+1:|:-1:|:[\w-]+:")  # the shortcode pattern in Streamlit 1.67's bundled remark-emoji


def _md_shown(s: str) -> str:
    """What a CommonMark renderer shows for ``s`` when it reads none of it as syntax: escapes and ZWSPs gone."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", s).replace(ZWSP, "")


@pytest.mark.parametrize("name", HOSTILE)
def test_one_line_is_one_capped_line_of_visible_text(name: str) -> None:
    s = one_line(name)
    assert len(s) <= MAX_CHARS
    assert all(ch.isprintable() for ch in s), repr(s)
    assert "\u202e" not in s and "\n" not in s and "  " not in s


@pytest.mark.parametrize("name", HOSTILE)
def test_md_shows_the_name_literally_and_renders_nothing(name: str) -> None:
    s = md(name)
    assert _md_shown(s) == one_line(name)  # the person sees their name, not a backslash
    unescaped = re.sub(r"\\.", "", s)  # what is left once every escaped character is taken out
    assert not re.search(r"[\[\]()<>`*_$&{}~#|]", unescaped), s  # no link, image, html, code, maths, emphasis
    assert not EMOJI.search(s), s  # no :shortcode: becomes an emoji (nor a :colour[...] directive)
    assert not re.search(r"(?i)https?:/|www\.|\w@\w", s), s  # no GFM autolink literal (url, www., e-mail)
    assert not re.match(r"\s*([-+>]|\d+[.)])", s), s  # not a list item or quote


@pytest.mark.parametrize("name", HOSTILE)
def test_plotly_and_html_text_are_entities_not_tags(name: str) -> None:
    for s in (plotly_text(name), html_text(name)):
        assert "<" not in s and ">" not in s
        assert html.unescape(s) == one_line(name)  # Plotly and browsers decode the entities back
    assert '"' not in html_text(name)  # an attribute value cannot be closed
    assert "%{" not in plotly_text(name) and "$" not in plotly_text(name)  # no template, no LaTeX
    # Plotly decodes only numeric entities and a few names (lt, gt, amp...): never one it would show raw
    assert not re.search(r"&(?!(lt|gt|amp|#\d+|#x[0-9a-f]+);)", plotly_text(name)), plotly_text(name)


def test_ordinary_names_are_unchanged() -> None:
    for name in ("T-shirt/top", "Ankle boot", "cat", "Sneaker", "ants", "bees", "Mike's photos", "日本語", "naïve"):
        assert md(name) == plotly_text(name) == one_line(name) == name or name == "Mike's photos"
    assert md("Mike's photos") == "Mike's photos"


def test_plotly_names_stay_distinct_when_cut_to_the_same_text() -> None:
    names = ["a" * 100 + "1", "a" * 100 + "2", "a" * 100 + "3", "cat", "cat\n"]
    out = plotly_names(names)
    assert len(set(out)) == len(names)
    assert out[1].endswith("(2)") and out[2].endswith("(3)") and out[4] == "cat (2)"


def _texts(fig) -> list[str]:
    """Every string a figure hands Plotly to draw: data values, text, names, templates, titles, annotations."""
    out: list[str] = []

    def walk(v):
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, dict):
            for k, x in v.items():
                if k != "meta":  # not drawn
                    walk(x)
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x)

    walk(fig.to_plotly_json())
    return out


def test_look_inside_figures_and_captions_escape_hostile_class_names():
    import numpy as np

    from tl_ui import inside_charts as ic

    names = HOSTILE[:6]
    n = len(names)
    cm = np.eye(n, dtype=int) * 3 + 1
    per = {"scratch": [0.5] * n, "finetune": [0.9] * n}
    figs = [ic.confusion_figure(cm, names, "finetune"), ic.per_class_figure(per, names),
            ic.feature_map_figure({"finetune": np.zeros((n, 2))}, np.arange(n), names),
            ic.prediction_table({"finetune": [(names[0], 0.7), (names[1], 0.2)]})]
    for fig in figs:
        texts = _texts(fig)
        leftover = [t for t in texts if re.search(r"<(?!br>|extra>|/extra>|b>|/b>)", t)]  # only the figures' own
        assert not leftover, leftover
        assert not any("\n" in t for t in texts)
    ticks = figs[0].data[0].x
    assert len(set(ticks)) == n and all(html.unescape(t) == one_line(c) for t, c in zip(ticks, names))
    for caption in (ic.confusion_caption(cm - np.eye(n, dtype=int) + np.roll(np.eye(n, dtype=int), 1, 1), names,
                                         "finetune"),
                    ic.per_class_caption(per, names), ic.prediction_caption({"finetune": [(names[2], 0.9)]})):
        assert "\n" not in caption and not re.search(r"(?<!\\)[\[<]", caption), caption
