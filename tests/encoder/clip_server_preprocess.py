"""Run clip-server 0.8.2's own image preprocessing on files; runs in the ENCODER venv.

    .venv-encoder/bin/python tests/encoder/clip_server_preprocess.py OUT.npz IMG [IMG ...]

It does what the ONNX executor does per document: ``clip._transform_blob(image_size)``
applied to the raw file bytes (``preproc_image`` passes ``d.blob``), cast to float32. The
result for image *i* is stored under ``"0"``, ``"1"``, ...; an image clip-server cannot
process is stored as an error message under ``"error_<i>"`` instead.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np


def main(argv: list[str]) -> int:
    """Write clip-server's pixel tensors for ``argv[1:]`` into the ``.npz`` at ``argv[0]``."""
    warnings.simplefilter("ignore")
    from clip_server.model import clip

    image_size = 224  # ViT-B-32's input size
    transform = clip._transform_blob(image_size)
    out: dict[str, np.ndarray] = {}
    for i, name in enumerate(argv[1:]):
        blob = Path(name).read_bytes()
        try:
            out[str(i)] = transform(blob).detach().numpy().astype(np.float32)
        except Exception as exc:  # report any failure to the test, which decides
            out[f"error_{i}"] = np.array(f"{type(exc).__name__}: {exc}")
    np.savez(argv[0], **out)  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
