"""The layering rule (docs/architecture.md): a module imports only from its own layer or the layers below it,
there is no import cycle, and no avkd import hides inside a function to dodge one.

core ← media ← data ← models ← losses ← evaluate ← train ← report ← tasks ← mfh ← cli / doctor

Only the command line (and ``avkd doctor``) imports library modules inside functions: on purpose, so that a
command that needs no model never pays for torch (tests/cli/test_startup.py).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "avkd"

#: Bottom to top. A module's layer is its first package under avkd/ (``avkd.__init__`` is below everything).
LAYERS: list[set[str]] = [
    {"__init__"},
    {"core"},
    {"media"},
    {"data"},
    {"models"},
    {"losses"},
    {"evaluate"},
    {"train"},
    {"report"},
    {"tasks"},
    {"mfh"},
    {"cli", "doctor", "__main__"},
]
#: Where imports inside functions are allowed (lazy imports keep the CLI's start-up free of torch).
LAZY_OK = {"cli", "doctor", "__main__"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top_of(module: str) -> str:
    """``avkd.tasks.sync.task`` -> ``tasks``; the package itself -> ``__init__``."""
    return module.split(".")[1] if "." in module else "__init__"


def layer_of(module: str) -> int:
    top = top_of(module)
    for index, names in enumerate(LAYERS):
        if top in names:
            return index
    raise AssertionError(
        f"{module}: its package {top!r} has no layer; add it to LAYERS and docs/architecture.md"
    )


def imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported avkd module, line, inside a function) for every import in the file."""
    tree = ast.parse(path.read_text())
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.ImportFrom) and child.module and child.module.split(".")[0] == "avkd":
                for alias in child.names:
                    candidate = f"{child.module}.{alias.name}"
                    # ``from avkd.x import y``: y is a module when avkd/x/y(.py) exists, else a name in avkd.x.
                    target = candidate if _is_module(candidate) else child.module
                    found.append((target, child.lineno, in_function))
            elif isinstance(child, ast.Import):
                found.extend(
                    (a.name, child.lineno, in_function) for a in child.names if a.name.split(".")[0] == "avkd"
                )
            visit(child, nested)

    visit(tree, False)
    return found


def _is_module(name: str) -> bool:
    base = PACKAGE.parent.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_has_a_layer() -> None:
    assert len(MODULES) > 50
    for module in MODULES:
        layer_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_go_down(module: str) -> None:
    mine = layer_of(module)
    bad = [
        f"line {line}: {target} (layer {LAYERS[layer_of(target)]}) is above {LAYERS[mine]}"
        for target, line, _ in imports(MODULES[module])
        if layer_of(target) > mine
    ]
    assert bad == [], f"{module} imports upwards"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_hidden_imports(module: str) -> None:
    if top_of(module) in LAZY_OK:
        return
    hidden = [f"line {line}: {target}" for target, line, inside in imports(MODULES[module]) if inside]
    assert hidden == [], f"{module} imports avkd modules inside functions"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path (first == last), or None; iterative depth-first search."""
    state: dict[str, int] = {}
    for start in graph:
        if state.get(start):
            continue
        stack: list[tuple[str, list[str]]] = [(start, sorted(graph[start]))]
        path = [start]
        state[start] = 1
        while stack:
            node, todo = stack[-1]
            if not todo:
                state[node] = 2
                stack.pop()
                path.pop()
                continue
            nxt = todo.pop()
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if not state.get(nxt) and nxt in graph:
                state[nxt] = 1
                stack.append((nxt, sorted(graph[nxt])))
                path.append(nxt)
    return None


def test_no_import_cycles() -> None:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        # A package's own __init__ importing its submodules (registration) is not a cycle with them.
        graph[module] = {
            target
            for target, _, _ in imports(path)
            if target in MODULES and target != module and not module.startswith(target + ".")
        }
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_checks_can_fail() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert layer_of("avkd.cli.main") > layer_of("avkd.tasks.base") > layer_of("avkd.core.registry")
