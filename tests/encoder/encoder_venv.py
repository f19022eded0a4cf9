"""Where the clip-server venv is, for tests that run code in it (marker ``encoder_venv``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import ROOT

STAMP = ".clipsearch-stamp"  # written by scripts/build_encoder_venv.sh once the build passed


def encoder_venv_dir() -> Path:
    """``$ENCODER_VENV`` if set (as for the build script), else ``<repo>/.venv-encoder``."""
    return Path(os.environ.get("ENCODER_VENV") or ROOT / ".venv-encoder")


@pytest.fixture(scope="session")
def encoder_python() -> Path:
    """The encoder venv's python. Fails (never skips) when the venv is not built."""
    venv = encoder_venv_dir()
    python = venv / "bin" / "python"
    if not python.exists() or not (venv / STAMP).exists():
        pytest.fail(
            f"the clip-server venv {venv} is missing or incomplete: run `make encoder-venv` "
            "(scripts/build_encoder_venv.sh); `make test` builds it before pytest",
            pytrace=False,
        )
    return python
