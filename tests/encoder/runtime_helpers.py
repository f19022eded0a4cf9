"""A writable copy of the shapes model with its int8 sibling, for the runtime tests."""

from __future__ import annotations

import shutil
from pathlib import Path

from clipsearch.encoder.openvino_session import openvino_available
from clipsearch.encoder.quantize import STATIC, int8_folder, quantize_model_dir
from tests.helpers import SHAPES_MODEL

# The runtimes this machine can run: openvino only where the optional extra is installed.
AVAILABLE_RUNTIMES = ("fp32", "int8", *(("openvino",) if openvino_available() else ()))


def shapes_with_int8(root: Path) -> Path:
    """``root/shapes`` (a copy of the committed model) and ``root/shapes-int8`` beside it, as
    ``clipsearch quantize`` writes it (static, calibrated on generated pictures)."""
    folder = root / "shapes"
    shutil.copytree(SHAPES_MODEL, folder)
    quantize_model_dir(folder, int8_folder(folder), method=STATIC, count=64)
    return folder
