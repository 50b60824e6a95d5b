"""The packages import one way, as ``docs/development.md`` says: models, data -> attribution -> robustness ->
figures, training -> metrics, hub -> demo, conversion -> study. Read from the source, so an upward import fails here even
inside a function."""

import ast
from pathlib import Path

import pytest


PACKAGE = Path(__file__).resolve().parents[1] / "hf_robattr"
_BELOW_TRAINING = {"models", "data", "attribution", "robustness", "training"}
# Each package and the packages it may import (besides itself and the top-level leaf modules of LEAF_MODULES).
ALLOWED = {
    "models": set(),
    "data": set(),
    "attribution": {"models", "data"},
    "robustness": {"models", "data", "attribution"},
    "figures": {"models", "data", "attribution", "robustness"},
    "training": {"models", "data", "attribution", "robustness"},
    "metrics": _BELOW_TRAINING,
    "hub": _BELOW_TRAINING | {"figures"},
    "conversion": _BELOW_TRAINING | {"metrics", "hub", "figures"},
    "demo": _BELOW_TRAINING | {"metrics", "hub", "figures"},
    "study": _BELOW_TRAINING | {"metrics", "hub", "figures", "conversion"},
}
# Top-level modules every package may import: they import no hf_robattr module (checked below).
LEAF_MODULES = {"paper", "results_io", "hub_upload", "extras", "model_folders", "warning_types"}
# evaluate loads the metric as a script, so it reaches the library through its top-level package.
EXCEPTIONS = {("metrics/attribution_robustness/attribution_robustness.py", "hf_robattr")}


def _imported_modules(path: Path) -> list[str]:
    """The absolute names of the hf_robattr modules ``path`` imports, anywhere in the file."""
    folder = path.relative_to(PACKAGE.parent).parent.parts
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(folder[: len(folder) - node.level + 1])
                module = ".".join(base + ([node.module] if node.module else []))
                # ``from .. import models`` names a subpackage in the imported names
                names += [f"{module}.{alias.name}" for alias in node.names] if not node.module else [module]
            else:
                names.append(node.module or "")
    return [name for name in names if name == "hf_robattr" or name.startswith("hf_robattr.")]


def _files() -> list:
    return [
        pytest.param(package, path, id=str(path.relative_to(PACKAGE)))
        for package in sorted(ALLOWED)
        for path in sorted((PACKAGE / package).rglob("*.py"))
    ]


def test_every_package_has_a_layer():
    packages = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").is_file()}
    assert packages == set(ALLOWED)


@pytest.mark.parametrize(("package", "path"), _files())
def test_imports_go_one_way(package, path):
    relative = str(path.relative_to(PACKAGE))
    upward = []
    for name in _imported_modules(path):
        target = name.split(".")[1] if "." in name else None
        if (relative, name) in EXCEPTIONS or target == package or target in LEAF_MODULES:
            continue
        if target not in ALLOWED[package]:
            upward.append(name)
    assert not upward, f"{relative} ({package}) imports {upward}; {package} may import {sorted(ALLOWED[package])}"


@pytest.mark.parametrize("name", sorted(LEAF_MODULES))
def test_leaf_modules_import_no_hf_robattr_module(name):
    assert _imported_modules(PACKAGE / f"{name}.py") == []


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _cycles(package: str) -> list[list[str]]:
    """The import cycles among the modules of ``package`` (imports anywhere in a file, ``TYPE_CHECKING`` included)."""
    modules = {_module_name(path): path for path in (PACKAGE / package).rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for imported in _imported_modules(path):
            # ``from .x import y`` names ``package.x``; ``from . import x`` names ``package.x`` too
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        graph[name] = targets
    cycles, state = [], {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                cycles.append([*trail[trail.index(target) :], target])
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


@pytest.mark.parametrize("package", sorted(set(ALLOWED) - {"study"}))  # study: being rewritten (issue 24)
def test_no_import_cycle_inside_a_package(package):
    # A package's __init__ imports its modules; a module importing the package's __init__ back is a cycle too.
    assert _cycles(package) == []
