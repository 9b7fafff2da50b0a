"""The package's structure: its imports form no cycle, and no module reaches into another's private names.

Both read the source with ``ast`` (nothing is imported). An import counts wherever it is written (module level or
inside a function: a lazy import still ties the two modules together) except under ``if TYPE_CHECKING:``, which
only type checkers run. ``docs/architecture.md`` describes the layering these tests hold the code to.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "tokencost"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE


@dataclass(frozen=True)
class Import:
    """``module`` imports ``target`` (a module of the package), naming ``names`` from it, at ``line``."""

    module: str
    target: str
    names: tuple[str, ...]
    line: int


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    return {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    """Every node under ``node`` except the bodies of ``if TYPE_CHECKING:`` (their ``else`` runs, so it counts)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield other
                yield from _walk(other)
            continue
        yield child
        yield from _walk(child)


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name of a relative ``from ... import``."""
    if level == 0:
        return target or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, *([target] if target else [])])


def imports(known: dict[str, Path], *, annotations: bool = False) -> list[Import]:
    """Every run-time import of a package module by a package module (with ``annotations``, those under
    ``if TYPE_CHECKING:`` too)."""
    found: list[Import] = []
    for module, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree) if annotations else _walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == PACKAGE:
                        found.append(Import(module, _owner(alias.name, known), (), node.lineno))
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, is_package, node.level, node.module)
                if base.split(".")[0] != PACKAGE:
                    continue
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    if sub in known:  # from tokencost import _budget_error: the submodule itself
                        found.append(Import(module, sub, (), node.lineno))
                    else:
                        found.append(Import(module, _owner(base, known), (alias.name,), node.lineno))
            elif isinstance(node, ast.Call) and _is_import_module(node):
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.startswith(PACKAGE):
                    found.append(Import(module, _owner(arg.value, known), (), node.lineno))
    return [imp for imp in found if imp.target != imp.module]


def _is_import_module(node: ast.Call) -> bool:
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return name == "import_module" and bool(node.args)


def _owner(name: str, known: dict[str, Path]) -> str:
    """The package module that ``name`` is or lives in."""
    while name not in known and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def import_graph(*, annotations: bool = False) -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {name: set() for name in known}
    # A submodule's import of its own package (which runs first anyway) is an edge like any other; the implicit
    # one (importing tokencost.pricing.override runs tokencost.pricing) is not: a package's __init__ importing its
    # submodules is how packages are built.
    for imp in imports(known, annotations=annotations):
        graph[imp.module].add(imp.target)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other in a circle (strongly connected components, Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def cycle_through(graph: dict[str, set[str]], component: list[str], start: str) -> list[str]:
    """One shortest cycle from ``start`` back to it inside a component, for the failure message."""
    members = set(component)
    paths: dict[str, list[str]] = {start: [start]}
    frontier = [start]
    while frontier:
        nxt_frontier: list[str] = []
        for node in frontier:
            for nxt in sorted(graph[node] & members):
                if nxt == start:
                    return [*paths[node], start]
                if nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    nxt_frontier.append(nxt)
        frontier = nxt_frontier
    return component


def private_uses() -> list[str]:
    """Uses of another module's private names: ``from tokencost.x import _y`` and ``x._y`` on an imported module.

    Dunder names (``__version__``) are not private; a module importing its own package's private submodule is
    allowed only for the package that owns it (``tokencost.pricing`` uses ``tokencost.pricing._price``).
    """
    known = modules()
    violations: list[str] = []
    for module, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        is_package = path.name == "__init__.py"
        aliases: dict[str, str] = {}  # local name -> package module it stands for
        for node in ast.walk(tree):  # TYPE_CHECKING imports included: reaching into privates is the point
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == PACKAGE:
                        local = alias.asname or alias.name
                        aliases[local] = alias.name
                        _check_path(module, alias.name, known, node.lineno, violations)
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, is_package, node.level, node.module)
                if base.split(".")[0] != PACKAGE:
                    continue
                _check_path(module, base, known, node.lineno, violations)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    aliases[alias.asname or alias.name] = sub  # a module, or a class whose privates are its own
                    if sub in known:
                        _check_path(module, sub, known, node.lineno, violations)
                    elif _private(alias.name):
                        violations.append(f"{module}:{node.lineno}: from {base} import {alias.name}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                dotted = _dotted(node.value)
                if dotted is None:
                    continue
                head, _, rest = dotted.partition(".")
                if head in aliases:
                    target = ".".join([aliases[head], *([rest] if rest else [])])
                    if _owner(target, known) != module:
                        violations.append(f"{module}:{node.lineno}: {dotted}.{node.attr}")
    return sorted(set(violations))


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _check_path(module: str, target: str, known: dict[str, Path], line: int, violations: list[str]) -> None:
    """A private module (``tokencost.pricing._price``) may be imported by the package that holds it only."""
    parts = target.split(".")
    for i, part in enumerate(parts):
        if _private(part):
            owner = ".".join(parts[:i])
            if module != owner and not module.startswith(owner + "."):
                violations.append(f"{module}:{line}: imports private module {'.'.join(parts[: i + 1])}")
            return


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return None if inner is None else f"{inner}.{node.attr}"
    return None


def test_package_imports_form_no_cycle() -> None:
    """No chain of run-time imports leads from a module of the package back to itself."""
    graph = import_graph()
    assert "tokencost.tracker" in graph, "the structure test found no modules"
    lines = []
    for component in find_cycles(graph):
        lines.append(f"modules importing each other: {', '.join(component)}")
        lines.extend("    " + " -> ".join(cycle_through(graph, component, start)) for start in component)
    assert not lines, "import cycles (chains of run-time imports):\n" + "\n".join(lines)


def test_annotations_form_no_cycle_either() -> None:
    """Imports for type annotations only (``if TYPE_CHECKING:``) form no cycle either: a lower module that must
    name a higher object names a protocol (``engine.Tracking``, ``scoped.BlockTracker``) instead."""
    graph = import_graph(annotations=True)
    assert graph["tokencost.wrappers"] >= {"tokencost.engine"}, "the structure test missed annotation imports"
    lines = []
    for component in find_cycles(graph):
        lines.append(f"modules importing each other: {', '.join(component)}")
        lines.extend("    " + " -> ".join(cycle_through(graph, component, start)) for start in component)
    assert not lines, "import cycles (annotation imports included):\n" + "\n".join(lines)


def test_no_module_uses_another_modules_private_names() -> None:
    """Modules talk through public names; ``_name`` belongs to the module that defines it."""
    violations = private_uses()
    assert not violations, "private names used across modules:\n" + "\n".join(violations)
