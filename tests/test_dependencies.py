"""What the app imports is installed by `pip install -e .`, not only by the test extras.

The tests run with the test extras installed, so a module the app imports but only the extras
declare passes every other test and fails for a user of a plain install (the `hf` export file type
once failed that way: `datasets` was a test dependency). Here every third-party module imported by
annotation/, generation/ and synthlab/ must come from a core dependency or from what those require.
"""

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIRST_PARTY = {"annotation", "generation", "synthlab"}


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement).group(0)).lower()


def _imported_modules() -> dict[str, str]:
    """Top-level third-party module -> the first app file that imports it."""
    found: dict[str, str] = {}
    for package in sorted(FIRST_PARTY):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in FIRST_PARTY and top != "__future__":
                        found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def _installed_by_core() -> set[str]:
    """The core dependencies and everything they require (no extras), by normalised name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    todo = [_name(r) for r in project["dependencies"]]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [_name(r) for r in requires if "extra ==" not in r]
    return seen


def test_every_module_the_app_imports_comes_with_a_plain_install():
    providers = metadata.packages_distributions()
    core = _installed_by_core()
    missing = []
    for module, where in _imported_modules().items():
        distributions = {_name(d) for d in providers.get(module, [])}
        if not distributions & core:
            missing.append(
                f"{module} (imported by {where}; from {sorted(distributions) or 'nothing installed'})"
            )
    assert not missing, "Declare these in pyproject's [project] dependencies: " + "; ".join(missing)
