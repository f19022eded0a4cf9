"""The use-cases (uploads, search, texts, job submission, the picture write path) know
nothing of the web framework: importing them loads no FastAPI or Starlette."""

from __future__ import annotations

import subprocess
import sys

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
