"""The package's import graph: at the top of each file, acyclic, layered as the data flows; and a light CLI.

Edges are read with ``ast`` from every ``import`` statement (wherever it stands) and from the lazy
export tables of the packages' ``__init__`` files (``lazy.attach(..., submodules=..., submod_attrs=...)``),
so an import deferred into a function or behind a lazy name is counted too.
"""

import ast
import importlib
import operator
import subprocess
import sys
from pathlib import Path

import pytest

import spikeloc

PACKAGE = Path(spikeloc.__file__).parent
# each stage imports only from the stages before it (and itself): the data flow, from config to the
# command line
LAYERS = ["errors", "config", "task", "neurons", "kernels", "observer", "models", "training", "evaluation",
          "runs", "analysis", "export", "sweeps", "viz", "cli", "__main__"]


def module_name(path: Path) -> str:
    parts = ("spikeloc", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _targets(module: str, node: ast.AST) -> list[str]:
    """The spikeloc modules an import statement reaches."""
    is_package = MODULES[module].name == "__init__.py"
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "spikeloc"]
    if node.level == 0:
        base = node.module or ""
        if base.split(".")[0] != "spikeloc":
            return []
    else:
        parts = module.split(".")
        parts = parts if is_package else parts[:-1]
        base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]


def _lazy_targets(module: str, tree: ast.Module) -> list[str]:
    """Submodules named by ``lazy.attach`` (its ``submodules`` list and ``submod_attrs`` keys)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "attach":
            for kw in node.keywords:
                names = kw.value.keys if isinstance(kw.value, ast.Dict) else kw.value.elts
                out += [f"{module}.{n.value}" for n in names]
    return out


def _top_level(tree: ast.Module) -> list[ast.stmt]:
    """Statements at the top of a file, including inside a top-level ``try`` (an optional dependency)."""
    out = []
    for stmt in tree.body:
        out.append(stmt)
        if isinstance(stmt, ast.Try):
            out += stmt.body
    return out


def graph() -> tuple[dict[str, set[str]], list[str]]:
    """Edges module -> modules it imports, and the intra-package imports that are not at the top of
    their file."""
    edges, nested = {}, []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        top = {id(s) for s in _top_level(tree)}
        targets = set(_lazy_targets(module, tree))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom) and (found := _targets(module, node)):
                targets |= set(found)
                if id(node) not in top:
                    nested.append(f"{module}:{node.lineno}")
        edges[module] = targets - {module}
    return edges, nested


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in sorted(edges.get(m, ())):
            if state.get(n) == "open":
                return [*stack[stack.index(n):], n]
            if n not in state and (cycle := visit(n)):
                return cycle
        state[m] = "done"
        stack.pop()
        return None

    for m in sorted(edges):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_every_import_is_at_the_top_of_its_file():
    assert graph()[1] == []


def test_the_import_graph_has_no_cycle():
    edges, _ = graph()
    assert all(t in MODULES for targets in edges.values() for t in targets)  # the walk resolves every import
    assert find_cycle(edges) is None, " -> ".join(find_cycle(edges))


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def layer(module: str) -> int:
    return LAYERS.index(module.split(".")[1])


def test_each_stage_imports_only_earlier_stages():
    edges, _ = graph()
    upward = [f"{m} -> {t}" for m, targets in edges.items() if m != "spikeloc" for t in targets
              if t != "spikeloc" and layer(t) > layer(m)]
    assert upward == []
    assert set(LAYERS) == {m.split(".")[1] for m in MODULES if m != "spikeloc"}  # every stage has its place


def lazy_names(path: Path) -> list[str]:
    """The names (not submodules) a package's ``lazy.attach`` exports."""
    calls = [n for n in ast.walk(ast.parse(path.read_text()))
             if getattr(getattr(n, "func", None), "attr", "") == "attach"]
    return [e.value for c in calls for kw in c.keywords if kw.arg == "submod_attrs" for v in kw.value.values
            for e in v.elts]


@pytest.mark.parametrize("package", sorted(m for m, p in MODULES.items() if p.name == "__init__.py"))
def test_no_lazy_name_shadows_a_submodule(package):
    names = lazy_names(MODULES[package])
    submodules = {m.rpartition(".")[2] for m in MODULES if m.rpartition(".")[0] == package}
    assert names and not set(names) & submodules
    module = __import__(package, fromlist=["_"])
    assert all(getattr(module, name) is not None for name in names)  # every lazy name resolves


def test_every_module_is_reached_by_its_dotted_name():
    """``import spikeloc.x.y as m`` and ``spikeloc.x.y`` are the module: no function or class shadows it."""
    for name in MODULES.keys() - {"spikeloc", "spikeloc.__main__"}:  # __main__ would run the CLI
        module = importlib.import_module(name)
        assert operator.attrgetter(name.removeprefix("spikeloc."))(spikeloc) is module, name
    assert callable(spikeloc.fit) and callable(spikeloc.train)  # the functions are at the top


@pytest.mark.parametrize("argv", [["--help"], ["presets"], ["config", "--preset", "best"],
                                  ["train", "--help"]])
def test_light_commands_import_neither_torch_nor_matplotlib(argv):
    code = ("import sys\nfrom spikeloc.cli import main\ntry:\n    main(sys.argv[1:])\n"
            "except SystemExit as e:\n    assert not e.code, e.code\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'matplotlib', 'numba', 'numpy'))\nprint('HEAVY', heavy)")
    res = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True)
    assert "HEAVY []" in res.stdout, res.stdout[-300:]
