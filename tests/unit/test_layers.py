"""The layers: ``clipsearch.core`` is the leaf of the package (no module under it imports
the adapters, the use-cases, the HTTP layer or the web framework, relative imports
included), and the use-cases (uploads, search, texts, job submission, the picture write
path) know nothing of the web framework: importing them loads no FastAPI or Starlette."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import clipsearch.core

CORE = Path(clipsearch.core.__file__).parent
FORBIDDEN_PACKAGES = {"encoder", "store", "jobs", "usecases", "api", "bootstrap"}
FORBIDDEN_TOP = {"fastapi", "starlette"}


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


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
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


USE_CASES = [
    "clipsearch.jobs.submit",
    "clipsearch.jobs.runner",
    "clipsearch.usecases.images",
    "clipsearch.usecases.picture_writes",
    "clipsearch.usecases.search",
    "clipsearch.usecases.texts",
]


def test_use_cases_import_no_web_framework() -> None:
    code = (
        "import importlib, sys\n"
        f"for m in {USE_CASES!r}: importlib.import_module(m)\n"
        "web = sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette'))\n"
        "print(','.join(web))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
