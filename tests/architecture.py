"""The import rules of fabfile/, as a checker the tests run on the real tree and on planted violations.

Layers: tasks -> actions -> engine -> {planners, transport} -> model. The
engine imports no task nor action; transport imports only the model; planners
(the pure packages) import neither the engine, SSH nor the apply and handler
shell; the payload programs sent to hosts import only the standard library.
No module cycles, no import inside a function to dodge one, no module over
MAX_LINES lines.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

MAX_LINES = 300
PLANNERS = ("engines", "registry", "images", "kolla", "inventory", "facts")
SSH = ("fabric", "paramiko", "invoke")
# Which of the package's own layers each layer may import (besides itself).
ALLOWED = {
    "model": (),
    "transport": ("model",),
    "payload": ("model",),
    "facts": ("model",),
    **{planner: ("model", "facts", "payload", *PLANNERS) for planner in PLANNERS},
    "engine": ("model", "facts", "payload", "transport", *PLANNERS),
    "actions": ("model", "facts", "payload", "engine", *PLANNERS),
    "tasks": ("model", "facts", "payload", "engine", "actions", "transport", *PLANNERS),
    "": ("tasks", "kolla"),
}
# Third-party packages a layer must not import.
FORBIDDEN = {**{planner: SSH for planner in PLANNERS}, "model": SSH, "facts": SSH, "actions": ("paramiko",)}
# What the actions may take of the engine: its base classes only.
ACTION_ENGINE = {"engine.action"}


@dataclass(frozen=True)
class Module:
    name: str  # dotted, relative to the package: "engine.runner"
    path: Path
    tree: ast.Module

    @property
    def layer(self) -> str:
        return self.name.split(".")[0] if "." in self.name or self.name != "__init__" else ""


def modules(root: Path) -> list[Module]:
    """Every module of the package at ``root``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        found.append(Module(".".join(parts), path, ast.parse(path.read_text())))
    return found


def imports(module: Module, package: str) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every import of ``module``; the package's own
    modules relative to it, others by their top-level name."""
    found = []
    base = module.name.split(".") if module.path.name == "__init__.py" else module.name.split(".")[:-1]
    if module.name == "__init__":
        base = []
    for node, nested in _walk(module.tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parent = base[: len(base) - node.level + 1] if node.level > 1 else base
                target = ".".join([*parent, *(node.module.split(".") if node.module else [])])
            elif node.module.split(".")[0] == package:
                target = node.module.partition(".")[2]
            else:
                found.append(("ext:" + node.module.split(".")[0], node.lineno, nested))
                continue
            # Each name may be a module of its own (``from ..registry import facts``).
            found += [(f"{target}.{alias.name}".strip("."), node.lineno, nested) for alias in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                name = alias.name.partition(".")[2] if top == package else "ext:" + top
                found.append((name, node.lineno, nested))
    return found


def _walk(tree: ast.AST, nested: bool = False):
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            continue
        inner = nested or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, nested
        yield from _walk(child, inner)


def violations(root: Path, package: str = "fabfile") -> list[str]:
    """Every broken rule in the package at ``root``, one line each."""
    found: list[str] = []
    mods = {module.name: module for module in modules(root)}
    graph: dict[str, set[str]] = {}
    for module in mods.values():
        where = f"{module.path.relative_to(root.parent)}"
        lines = len(module.path.read_text().splitlines())
        if lines > MAX_LINES:
            found.append(f"{where}: {lines} lines (more than {MAX_LINES})")
        graph[module.name] = set()
        for target, line, nested in imports(module, package):
            if target.startswith("ext:"):
                if target[4:] in FORBIDDEN.get(module.layer, ()):
                    found.append(f"{where}:{line}: the {module.layer} layer imports {target[4:]}")
                continue
            if nested:
                found.append(f"{where}:{line}: imports {target} inside a function")
            resolved = _resolve(target, mods)
            graph[module.name].add(resolved)
            found += _layer_problems(module, resolved, where, line)
    found += [f"import cycle: {' -> '.join(cycle)}" for cycle in _cycles(graph)]
    return found


def _layer_problems(module: Module, target: str, where: str, line: int) -> list[str]:
    layer, wanted = module.layer, target.split(".")[0] if target else ""
    if wanted == layer or not target:
        return []
    if wanted not in ALLOWED.get(layer, ()):
        return [f"{where}:{line}: the {layer or 'package'} layer imports {target} ({wanted})"]
    if layer == "actions" and wanted == "engine" and target not in ACTION_ENGINE:
        return [f"{where}:{line}: an action imports {target}: only {', '.join(sorted(ACTION_ENGINE))}"]
    if layer == "payload" and module.name != "payload" and wanted != "payload":
        return [f"{where}:{line}: a program sent to hosts imports {target}"]
    return []


def _resolve(target: str, mods: dict[str, Module]) -> str:
    """``from .x import name``: the module ``x.name`` when it is one, else ``x``."""
    while target and target not in mods:
        target = target.rpartition(".")[0]
    return target or "__init__"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles (one per strongly connected component of more than one module, or a self loop)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            # A package's __init__ importing its own modules is not a cycle of behaviour.
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles
