"""``clipsearch.core`` is the leaf of the package: no module under it imports the adapters,
the use-cases, the HTTP layer or the web framework (relative imports included)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import clipsearch.core

CORE = Path(clipsearch.core.__file__).parent
FORBIDDEN_PACKAGES = {"encoder", "store", "jobs", "usecases", "api", "bootstrap"}
FORBIDDEN_TOP = {"fastapi", "starlette"}
# The HTTP rendering of errors leaves core/errors.py on the error-vocabulary branch
# (the error-vocabulary change, made in parallel); drop this once both are merged.
PENDING = {"errors.py"}


def imported_modules(path: Path) -> list[str]:
    """Absolute names of every module ``path`` imports, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = ["clipsearch", "core"]
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            names.append(module)
            # ``from .. import store`` names the forbidden package in the alias.
            names += [f"{module}.{alias.name}" for alias in node.names]
    return names


def violations(path: Path) -> list[str]:
    bad = []
    for name in imported_modules(path):
        top, _, rest = name.partition(".")
        # A bare ``import store`` (top-level) would be as wrong as ``clipsearch.store``.
        package = rest.split(".")[0] if top == "clipsearch" else top
        if top in FORBIDDEN_TOP or package in FORBIDDEN_PACKAGES:
            bad.append(name)
    return bad


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(
            p,
            id=p.name,
            marks=[pytest.mark.xfail(reason="core/errors.py moves on the other branch")]
            if p.name in PENDING
            else [],
        )
        for p in sorted(CORE.glob("*.py"))
    ],
)
def test_core_imports_nothing_above_it(path: Path) -> None:
    assert violations(path) == []


def test_the_check_sees_every_import_form(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import fastapi\n"
        "from starlette.types import Scope\n"
        "from clipsearch.encoder.protocol import Encoder\n"
        "from ..store import protocol\n"
        "from .. import jobs\n"
        "from .config import Settings\n"
        "import clipsearch.core.metrics\n"
        "def lazy():\n"
        "    from clipsearch.api.app import create_app\n"
    )
    assert violations(sample) == [
        "fastapi",
        "starlette.types",
        "starlette.types.Scope",
        "clipsearch.encoder.protocol",
        "clipsearch.encoder.protocol.Encoder",
        "clipsearch.store",
        "clipsearch.store.protocol",
        "clipsearch.jobs",
        "clipsearch.api.app",
        "clipsearch.api.app.create_app",
    ]
