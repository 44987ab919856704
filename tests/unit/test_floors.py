"""The house, floor by floor (docs/architecture.md): imports only point down, no circles, small files.

The code is read with `ast`, never imported, so a function-level import counts as much as one at the
top of a module: "no two modules import each other, even lazily". Relative imports are resolved, and
`from pkg import name` counts as importing `pkg.name` when that is a module (`from .. import
gateways` imports portal.gateways, not the app factory in portal/__init__.py); importing a module
is not counted as importing the packages above it.
"""
from __future__ import annotations

import ast
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 400

#: bottom to top; a module may import modules on its own floor or below. A name covers the module
#: and everything under it, except the app factory and app.py, which are one module each.
FLOORS = (
    ("ground", ("portal.domain", "portal.config", "portal.extensions", "portal.gateways")),
    ("models", ("portal.models",)),
    ("services", ("portal.services",)),
    # Helpers of the web layer, below the blueprints that use them (uploads, CSV export) and
    # installed by the factory (templating, security, error handlers, the input guard); they know
    # no blueprint.
    ("web helpers", ("portal.uploads", "portal.csv_export", "portal.templating", "portal.security",
                     "portal.errors", "portal.input_guard")),
    ("blueprints and dunning jobs", ("portal.debtor", "portal.creditor", "portal.api", "portal.webhooks",
                                     "dunning_jobs")),
    ("cli", ("portal.cli",)),
    ("app factory", ("portal",)),
    ("app.py", ("app",)),
)
SINGLE_MODULES = {"portal", "app"}
BLUEPRINTS = ("portal.debtor", "portal.creditor", "portal.api", "portal.webhooks")
#: what the domain never imports, being pure Python (nor portal.extensions, which is both)
NOT_IN_DOMAIN = {"flask", "werkzeug", "sqlalchemy"}


def _modules() -> dict[str, Path]:
    """Every production module by dotted name."""
    found = {"app": ROOT / "app.py"}
    for package in ("portal", "dunning_jobs"):
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _under(module: str, prefix: str) -> bool:
    return module == prefix or (prefix not in SINGLE_MODULES and module.startswith(prefix + "."))


def floor_of(module: str) -> int | None:
    best = None
    for level, (_, prefixes) in enumerate(FLOORS):
        for prefix in prefixes:
            if _under(module, prefix) and (best is None or len(prefix) > len(best[1])):
                best = (level, prefix)
    return best[0] if best else None


def _project_module(dotted: str) -> str | None:
    """The project module a dotted name is in (its longest prefix that is one), or None if outside."""
    parts = dotted.split(".")
    while parts:
        if ".".join(parts) in MODULES:
            return ".".join(parts)
        parts.pop()
    return None


def imports_of(module: str, source: str, is_package: bool):
    """(imported, line) for every import in the source: `imported` is a project module, or the
    dotted name as written for anything outside the project."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append((_project_module(alias.name) or alias.name, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                if node.level > 1:
                    base = base[:-(node.level - 1)]
                base = ".".join(base + ([node.module] if node.module else []))
            else:
                base = node.module
            for alias in node.names:
                if f"{base}.{alias.name}" in MODULES:
                    found.append((f"{base}.{alias.name}", node.lineno))
                else:
                    found.append((_project_module(base) or base, node.lineno))
    return found


def import_graph():
    """{importer: {imported: [lines]}} over project modules, and the outside imports as
    (importer, dotted name, line)."""
    graph, outside = {}, []
    for module, path in MODULES.items():
        edges = graph.setdefault(module, {})
        for imported, line in imports_of(module, path.read_text(encoding="utf-8"), path.name == "__init__.py"):
            if imported in MODULES:
                if imported != module:
                    edges.setdefault(imported, []).append(line)
            else:
                outside.append((module, imported, line))
    return graph, outside


def _where(module: str, lines: list[int]) -> str:
    return f"{MODULES[module].relative_to(ROOT)}:{','.join(map(str, sorted(set(lines))))}"


def _blueprint(module: str) -> str | None:
    return next((b for b in BLUEPRINTS if _under(module, b)), None)


def floor_violations(graph, outside) -> list[str]:
    found = []
    for module in sorted(graph):
        if floor_of(module) is None:
            found.append(f"{module} ({MODULES[module].relative_to(ROOT)}) is on no floor: add it to FLOORS")
    for module, edges in sorted(graph.items()):
        here = floor_of(module)
        for imported, lines in sorted(edges.items()):
            there = floor_of(imported)
            reasons = []
            if here is not None and there is not None and there > here:
                reasons.append(f"floor '{FLOORS[here][0]}' imports the higher floor '{FLOORS[there][0]}'")
            mine, theirs = _blueprint(module), _blueprint(imported)
            if mine and theirs and mine != theirs:
                reasons.append("blueprints never import each other")
            if _under(module, "dunning_jobs") and theirs:
                reasons.append("dunning_jobs never imports a blueprint")
            if _under(module, "portal.gateways") and (_under(imported, "portal.models")
                                                      or _under(imported, "portal.services")):
                reasons.append("gateways never import models or services")
            if _under(module, "portal.domain") and imported == "portal.extensions":
                reasons.append("the domain never imports Flask or SQLAlchemy")
            if reasons:
                found.append(f"{module} -> {imported} ({_where(module, lines)}): {'; '.join(reasons)}")
    for module, name, line in sorted(outside):
        top = name.split(".")[0]
        if _under(module, "portal.domain") and (top in NOT_IN_DOMAIN or top.startswith("flask_")):
            found.append(f"{module} -> {name} ({_where(module, [line])}): the domain never imports Flask or SQLAlchemy")
    return found


def _strongly_connected(graph) -> list[list[str]]:
    """Tarjan's components with more than one module: each holds at least one circle."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(start):
        # iterative, so a deep graph cannot hit the recursion limit
        work = [(start, iter(sorted(graph.get(start, {}))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = len(index)
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph.get(succ, {})))))
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return components


def _shortest_path(graph, start, goal, within) -> list[str]:
    came_from, queue = {start: None}, deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            path = []
            while node is not None:
                path.append(node)
                node = came_from[node]
            return path[::-1]
        for succ in sorted(graph.get(node, {})):
            if succ in within and succ not in came_from:
                came_from[succ] = node
                queue.append(succ)
    raise AssertionError("no path inside a strongly connected component")


def circles(graph) -> list[str]:
    """Circles that together use every import inside each tangle, each written as a path back to
    its start with where each import is."""
    found = []
    for component in _strongly_connected(graph):
        members, covered = set(component), set()
        for module in component:
            for imported in sorted(graph[module]):
                if imported not in members or (module, imported) in covered:
                    continue
                path = [module] + _shortest_path(graph, imported, module, members)
                steps = list(zip(path, path[1:]))
                covered.update(steps)
                found.append(path[0] + "".join(f" -> {b} ({_where(a, graph[a][b])})" for a, b in steps))
    return found


def test_the_reader_resolves_imports_as_python_does():
    source = (
        "from .. import gateways\n"
        "from . import ledger\n"
        "from ..models import Invoice\n"
        "import portal.domain.money\n"
        "from flask import request\n"
        "def f():\n"
        "    from portal import create_app\n"
    )
    assert imports_of("portal.services.payments", source, is_package=False) == [
        ("portal.gateways", 1), ("portal.services.ledger", 2), ("portal.models", 3),
        ("portal.domain.money", 4), ("flask", 5), ("portal", 7)]
    # in a package's __init__, "." is the package itself
    assert imports_of("portal.services", "from . import ledger\nfrom .ledger import x\n", is_package=True) == [
        ("portal.services.ledger", 1), ("portal.services.ledger", 2)]
    assert imports_of("portal", "from . import models\n", is_package=True) == [("portal.models", 1)]
    assert floor_of("portal.services.ledger") == 2
    assert floor_of("portal.cli") == 5 and floor_of("portal") == 6 and floor_of("app") == 7


def test_imports_point_down():
    graph, outside = import_graph()
    found = floor_violations(graph, outside)
    assert not found, (f"{len(found)} import(s) break the floors (importer -> imported (file:line)):\n  "
                       + "\n  ".join(found))


def test_no_import_circles():
    graph, _ = import_graph()
    found = circles(graph)
    assert not found, (f"{len(found)} import circle(s), each from a module back to itself "
                       "(-> imported (file:line of the import)):\n  " + "\n  ".join(found))


def _production_files():
    yield ROOT / "app.py"
    for package in ("portal", "dunning_jobs"):
        for path in sorted((ROOT / package).rglob("*")):
            relative = path.relative_to(ROOT).as_posix()
            # translations are generated by Babel; vendor/ holds pinned third-party files
            if (not path.is_file() or "__pycache__" in path.parts or relative.startswith("portal/translations/")
                    or relative.startswith("portal/static/vendor/")):
                continue
            yield path


def test_no_production_file_over_400_lines():
    long = []
    for path in _production_files():
        try:
            count = len(path.read_text(encoding="utf-8").splitlines())
        except UnicodeDecodeError:
            continue  # not text
        if count > MAX_LINES:
            long.append(f"{path.relative_to(ROOT)}: {count} lines")
    assert not long, f"{len(long)} production file(s) over {MAX_LINES} lines:\n  " + "\n  ".join(long)
