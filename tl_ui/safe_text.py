"""Names a person chose (class folders, file names), made safe to show: one helper family for every renderer.

A class folder can be called ``<a href=x>``, ``[link](http://x)``, ``:smile:`` or 500 characters with a newline
and right-to-left marks in it. Each renderer would turn some of that into markup: Streamlit's markdown (captions,
messages, widget labels) renders links, images, emoji shortcodes, ``:red[colour]`` directives, ``$maths$`` and
autolinks; Plotly text (tick labels, hover, legend, titles) renders ``<a>``, ``<span style>``, ``<br>``; an HTML
builder renders everything. So every shown name goes through one of:

- :func:`one_line`: the plain text itself: control and formatting characters (newlines, RTL/LTR marks,
  zero-width characters) become one space, runs of spaces collapse, and the text is capped at :data:`MAX_CHARS`
  with an ellipsis. Use it where text is never markup (Pillow, ``st.image`` captions, plain tables).
- :func:`md`: for ``st.markdown``/``caption``/``write``/``info``/widget labels.
- :func:`plotly_text` (and :func:`plotly_names` for a list that must stay distinct, e.g. category axes).
- :func:`html_text`: for HTML builders (``unsafe_allow_html``).
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable

__all__ = ["MAX_CHARS", "one_line", "md", "plotly_text", "plotly_names", "html_text"]

MAX_CHARS = 60  # a class name longer than this is cut with "…": it still fits a tick label or a sentence
ZWSP = "\u200b"  # zero-width space: invisible, but breaks autolinks and emoji shortcodes in markdown

# Every ASCII punctuation a markdown renderer may read as syntax (CommonMark lets any of them be
# backslash-escaped; the escape is invisible in the rendered text).
_MD_SPECIAL = re.compile(r"([\\`*{}\[\]()<>#|~$&]|(?<![^\W_])_|_(?![^\W_]))")  # "train_size": no emphasis
_MD_LINE_START = re.compile(r"^([-+.:]|\d+[.)])")  # list or block markers, only where a name starts a line
# www., scheme:, user@host, :shortcode: and :directive[...] all break here; "word: word" stays as it is
_AUTOLINK = re.compile(r"(?i)(www)(?=\.)|([:@])(?=[\w/+-])")


def _visible(ch: str) -> str:
    if ch == "\u200d":
        return ch  # the zero-width joiner inside emoji sequences (a family, a flag) is harmless
    if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs") or ch.isspace():
        return " "  # newline, tab, RTL/LTR marks and overrides, zero-width characters, unpaired surrogates
    return ch


def one_line(text: object, limit: int = MAX_CHARS) -> str:
    """``text`` as one line of plain visible characters, at most ``limit`` characters (ending in "…" if cut)."""
    s = "".join(_visible(ch) for ch in unicodedata.normalize("NFC", str(text)))
    s = " ".join(s.split())
    if len(s) > limit:
        s = s[:max(limit - 1, 0)].rstrip() + "…"
    return s


def md(text: object, limit: int = MAX_CHARS) -> str:
    """``text`` for Streamlit markdown: shown literally, never a link, image, emoji, colour, maths or HTML."""
    s = _MD_SPECIAL.sub(r"\\\1", one_line(text, limit))
    s = _AUTOLINK.sub(lambda m: (m.group(1) or m.group(2)) + ZWSP, s)
    return _MD_LINE_START.sub(lambda m: "\\" + m.group(1) if not m.group(1)[0].isdigit()
                              else m.group(1)[:-1] + "\\" + m.group(1)[-1], s)


def plotly_text(text: object, limit: int = MAX_CHARS) -> str:
    """``text`` for Plotly (ticks, hover, legend, titles): its HTML subset and ``%{...}``/``$`` read literally."""
    # Quotes stay: with "<" escaped no tag can open, and Plotly decodes only a few named entities (not &quot;).
    s = html.escape(one_line(text, limit), quote=False)
    return s.replace("$", "&#36;").replace("%", "&#37;")


def plotly_names(names: Iterable[object], limit: int = MAX_CHARS) -> list[str]:
    """:func:`plotly_text` of each name, kept distinct (" (2)", " (3)"... on repeats): a category axis would
    otherwise merge two classes whose names are cut to the same 60 characters."""
    out: list[str] = []
    seen: set[str] = set()
    for name in names:
        base = plotly_text(name, limit)
        s, k = base, 1
        while s in seen:
            k += 1
            s = f"{base} ({k})"
        seen.add(s)
        out.append(s)
    return out


def html_text(text: object, limit: int = MAX_CHARS) -> str:
    """``text`` for an HTML builder: escaped (tags, attributes and entities shown as text), one line, capped."""
    return html.escape(one_line(text, limit), quote=True)
