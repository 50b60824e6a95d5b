"""Import a file that is not part of a package (a recipe, a benchmark, another test folder's helpers) as a module."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


ROOT = Path(__file__).resolve().parents[1]


def load_script(path: str | Path, name: str) -> ModuleType:
    """Run the Python file ``path`` (relative to the repository root, or absolute) as a new module called ``name``.

    As when Python runs a script, the file's folder is on ``sys.path`` (benchmarks import their sibling modules).
    """
    folder = str((ROOT / path).parent)
    if folder not in sys.path:
        sys.path.append(folder)
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
