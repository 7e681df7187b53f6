"""The layers of docs/architecture.md, checked by reading the code (issue 14).

- the core (``gzcarbon``, without the top layer) imports no stage package and nothing of the top
  layer;
- stage packages (stations, transport, inversion, power, products) never import the top layer
  (the demo world ``gzcarbon.demo``, the command line ``gzcarbon.cli``) nor Snakemake, and never
  a private name (``_x``) of another package;
- the demo world does not import the command line (which sits above it: ``gzcarbon osse``);
- no import circle between modules;
- function length and complexity stay within the linter's limits (ruff, pyproject.toml).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("stations", "transport", "inversion", "power", "products")
CORE = "gzcarbon"
DEMO = "gzcarbon.demo"
CLI = "gzcarbon.cli"
#: the top layer, above the stages: the demo world and the command line
TOP = (DEMO, CLI)


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in (CORE, *STAGES):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            out[_module_name(path)] = path
    return out


def _imports(path: Path, module: str) -> list[tuple[str, list[str], bool]]:
    """(imported module, imported names, at module level) of every import statement."""
    tree = ast.parse(path.read_text(), str(path))
    top_level = {id(node) for node in tree.body}
    for node in tree.body:  # imports inside `if TYPE_CHECKING:` / try blocks at top level count too
        if isinstance(node, (ast.If, ast.Try)):
            top_level |= {id(n) for n in ast.walk(node)}
    out = []
    pkg_parts = module.split(".")
    if not path.name == "__init__.py":
        pkg_parts = pkg_parts[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                out.append((alias.name, [], id(node) in top_level))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg_parts[: len(pkg_parts) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.append((name, [a.name for a in node.names], id(node) in top_level))
    return out


def _top(name: str) -> str:
    return name.split(".")[0]


def _is_demo(name: str) -> bool:
    return name == DEMO or name.startswith(DEMO + ".")


def _in(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _is_top(name: str) -> bool:
    return any(_in(name, p) for p in TOP)


def test_layers():
    problems = []
    for module, path in _modules().items():
        in_core = _top(module) == CORE and not _is_top(module)
        for name, names, _ in _imports(path, module):
            targets = [name] + [f"{name}.{n}" for n in names]
            if in_core and _top(name) in STAGES:
                problems.append(f"{module}: the core imports stage module {name}")
            if in_core and any(_is_top(t) for t in targets):
                problems.append(f"{module}: the core imports the top layer ({name})")
            if _is_demo(module) and any(_in(t, CLI) for t in targets):
                problems.append(f"{module}: the demo world imports the command line ({name})")
            if _top(module) in STAGES:
                if any(_is_demo(t) for t in targets):
                    problems.append(f"{module}: a stage imports the demo world ({name})")
                if any(_in(t, CLI) for t in targets):
                    problems.append(f"{module}: a stage imports the command line ({name})")
                if _top(name) == "snakemake":
                    problems.append(f"{module}: a stage imports snakemake")
                if _top(name) in STAGES and _top(name) != _top(module):
                    private = [n for n in names if n.startswith("_")]
                    if private:
                        problems.append(f"{module}: private name(s) {private} of {name}")
    assert problems == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_circle():
    """Module-level imports between the project's modules form no circle (a package's
    ``__init__`` re-exporting its modules is not an edge back to the package)."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for module, path in mods.items():
        for name, names, top_level in _imports(path, module):
            if not top_level:
                continue
            for cand in [f"{name}.{n}" for n in names] + [name]:
                if cand in mods and cand != module and not module.startswith(cand + "."):
                    graph[module].add(cand)
                    break
    # a package's __init__ importing its own submodules is how packages export names
    for module in mods:
        if mods[module].name == "__init__.py":
            graph[module] = {t for t in graph[module] if not t.startswith(module + ".")}
    assert _cycles(graph) == []


@pytest.mark.skipif(shutil.which("ruff") is None and
                    subprocess.run([sys.executable, "-m", "ruff", "--version"],
                                   capture_output=True).returncode != 0,
                    reason="ruff not installed (pip install -e '.[test]')")
def test_function_length_and_complexity():
    """ruff's pylint/mccabe limits of pyproject.toml ([tool.ruff.lint]) hold in every package."""
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise",
                           CORE, *STAGES, "tools"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
