"""The encoder venv is what services/encoder/constraints.txt says, and rebuilding is free."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.encoder.encoder_venv import encoder_venv_dir
from tests.helpers import ROOT

pytestmark = pytest.mark.encoder_venv

CONSTRAINTS = ROOT / "services/encoder/constraints.txt"


def _pins(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        m = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)$", line.strip())
        if m:
            out[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(2)
    return out


def test_every_installed_package_is_pinned(encoder_python: Path) -> None:
    # A complete pin set is what makes the build resolve in minutes instead of backtracking.
    freeze = subprocess.run(
        [str(encoder_python), "-m", "pip", "freeze", "--all"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.splitlines()
    installed = _pins(freeze)
    installed.pop("pip", None)
    pinned = _pins(CONSTRAINTS.read_text().splitlines())
    assert installed["clip-server"] == "0.8.2"
    assert installed["jina"] == "3.33.1"
    assert installed["pydantic"].startswith("1.")
    assert installed == pinned


def test_build_script_skips_an_up_to_date_venv(encoder_python: Path) -> None:
    start = time.perf_counter()
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts/build_encoder_venv.sh")],
        env={**os.environ, "ENCODER_VENV": str(encoder_venv_dir())},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "is up to date" in proc.stdout
    assert time.perf_counter() - start < 10
