"""The architecture, checked: tl_engine's subpackages are layers (``tl_engine.LAYERS``, written once), every
import points down or sideways within a layer, and neither package has an import cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tl_engine import LAYERS

ROOT = Path(__file__).resolve().parents[2]


def imports_of(path: Path, package: str, module_level_only: bool = False) -> list[tuple[int, str]]:
    """(line, dotted module) for each import in a file of ``package`` (``tl_engine/data/user.py`` has package
    ``tl_engine.data``), relative ones resolved; with ``module_level_only`` the lazy ones are left out."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    out = []
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((node.lineno, mod))
            out += [(node.lineno, f"{mod}.{a.name}") for a in node.names]  # `from pkg import module`
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
    return out


def unit_of(dotted: str, top: str) -> str | None:
    """The first part below ``top`` (``tl_engine.data.user`` -> ``data``); None outside ``top``."""
    parts = dotted.split(".")
    return parts[1] if parts[0] == top and len(parts) > 1 else None


def upward_imports(root: Path, top: str, layers: tuple[tuple[str, ...], ...]) -> list[str]:
    """Every import in ``root/top`` from a higher layer, as 'file:line: a -> b'. A unit missing from
    ``layers`` is reported too: a new subpackage must be given its place."""
    rank = {unit: i for i, layer in enumerate(layers) for unit in layer}
    bad = []
    for f in sorted((root / top).rglob("*.py")):
        rel = f.relative_to(root).with_suffix("")
        parts = rel.parts if rel.name != "__init__" else rel.parts[:-1]
        package = ".".join(rel.parts[:-1])
        if len(parts) == 1:  # the top package's own __init__: the lowest layer of all
            continue
        here = parts[1]
        if here not in rank:
            bad.append(f"{rel}: '{here}' has no place in LAYERS")
            continue
        seen = set()
        for line, mod in imports_of(f, package):
            there = unit_of(mod, top)
            if there in rank and rank[there] > rank[here] and (line, there) not in seen:
                seen.add((line, there))
                bad.append(f"{rel}.py:{line}: {here} -> {there}")
    return bad


def test_every_engine_import_points_down_the_layers():
    assert upward_imports(ROOT, "tl_engine", LAYERS) == []


def test_the_layer_check_fails_on_an_upward_import(tmp_path):
    """The checker, on a synthetic tree: a lazy import from a higher layer, and a package with no place."""
    pkg = tmp_path / "eng"
    for sub, text in {
        "low/__init__.py": "",
        "low/a.py": "def f():\n    from ..high.b import g  # lazy, still upward\n    return g\n",
        "high/__init__.py": "",
        "high/b.py": "from ..low.a import f\n\ndef g():\n    return f\n",
        "stray/c.py": "x = 1\n",
    }.items():
        (pkg / sub).parent.mkdir(parents=True, exist_ok=True)
        (pkg / sub).write_text(text)
    bad = upward_imports(tmp_path, "eng", (("low",), ("high",)))
    assert bad == ["eng/low/a.py:2: low -> high", "eng/stray/c: 'stray' has no place in LAYERS"]


def test_the_engine_top_holds_only_contracts():
    top = sorted(p.name for p in (ROOT / "tl_engine").glob("*.py"))
    assert top == ["__init__.py", "__main__.py", "config.py", "errors.py"]
    packages = sorted(p.name for p in (ROOT / "tl_engine").iterdir() if (p / "__init__.py").exists())
    assert packages == sorted(u for layer in LAYERS for u in layer if u not in ("config", "errors", "__main__"))


@pytest.mark.parametrize("top", ["tl_engine", "tl_ui"])
def test_no_module_is_over_300_lines(top):
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / top).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 300}
    assert long == {}


def test_no_import_cycles_in_the_engine_or_the_ui():
    """Every module-level import of tl_engine and tl_ui, as a graph of modules: it has no cycle."""
    graph: dict[str, set[str]] = {}
    for top in ("tl_engine", "tl_ui"):
        for f in (ROOT / top).rglob("*.py"):
            rel = f.relative_to(ROOT).with_suffix("")
            mod = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
            package = ".".join(rel.parts[:-1])
            graph.setdefault(mod, set()).update(m for _, m in imports_of(f, package, module_level_only=True)
                                                if m.split(".")[0] in ("tl_engine", "tl_ui"))
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in graph.get(m, ()):
            if d not in graph or d == m:
                continue
            assert state.get(d) != 1, "import cycle: " + " -> ".join([*path, m, d])
            if d not in state:
                visit(d, [*path, m])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [])
