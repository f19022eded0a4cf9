"""How a graph runs, as the towers see it: the small :class:`Session` protocol, and the runtimes.

The towers (:mod:`clipsearch.encoder.towers`) say *what* is computed; a session says *how*
it runs. Two implementations sit behind the same protocol:

* :class:`~clipsearch.encoder.ort_session.OrtSession`: ONNX Runtime on the CPU. It runs the
  ``fp32`` folders and the ``int8`` ones (a quantised folder is a model of its own, made by
  ``clipsearch quantize``, see :mod:`clipsearch.encoder.quantize`).
* :class:`~clipsearch.encoder.openvino_session.OpenVinoSession`: OpenVINO on the same ONNX
  files, in bf16 where the CPU has native bf16 (AVX512-BF16 or AMX), else f32. Optional:
  ``pip install 'clipsearch[openvino]'``.

:data:`RUNTIMES` names what ``CLIPSEARCH_ENCODER_RUNTIME`` accepts; :func:`session_factory`
turns a runtime into "path -> session".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from clipsearch.encoder.protocol import EncoderError

# A dimension as a runtime reports it: an int when fixed, a name or None when dynamic.
Dim = int | str | None

FP32 = "fp32"
INT8 = "int8"
OPENVINO = "openvino"
RUNTIMES = (FP32, INT8, OPENVINO)
OPENVINO_EXTRA = "pip install 'clipsearch[openvino]'"


class Session(Protocol):
    """One loaded graph: its inputs, its output width, and ``run`` (first output, float32)."""

    path: Path

    @property
    def input_names(self) -> list[str]: ...

    def input_shape(self, name: str) -> list[Dim]: ...

    def input_dtype(self, name: str) -> type[np.generic]: ...

    @property
    def fixed_batch(self) -> int | None: ...

    @property
    def output_dim(self) -> int | None: ...

    def run(self, feeds: Mapping[str, npt.NDArray[np.generic]]) -> npt.NDArray[np.float32]: ...


SessionFactory = Callable[[Path], Session]
Feeds = Mapping[str, npt.NDArray[np.generic]]


def run_in_fixed_batches(
    typed: Feeds,
    fixed: int | None,
    run_once: Callable[[Feeds], npt.NDArray[np.float32]],
    output_dim: int | None,
) -> npt.NDArray[np.float32]:
    """``run_once`` over ``typed``; a graph with a fixed batch size (Immich's exports fix 1)
    gets the rows in slices of that size, the last padded by repeating its final row and the
    padding's outputs dropped. Shared by every runtime, so they batch alike."""
    rows = len(next(iter(typed.values()))) if typed else 0
    if fixed is None or rows == fixed:
        return run_once(typed)
    parts: list[npt.NDArray[np.float32]] = []
    for start in range(0, rows, fixed):
        chunk = {k: v[start : start + fixed] for k, v in typed.items()}
        got = len(next(iter(chunk.values())))
        if got < fixed:
            chunk = {
                k: np.concatenate([v, np.repeat(v[-1:], fixed - got, axis=0)])
                for k, v in chunk.items()
            }
        parts.append(run_once(chunk)[:got])
    if not parts:
        return np.zeros((0, output_dim or 0), dtype=np.float32)
    return np.concatenate(parts, axis=0)


def require_input(path: Path, names: list[str], name: str) -> None:
    if name not in names:
        raise EncoderError(f"{path}: no input named {name!r} (inputs: {', '.join(names)})")


def check_runtime(runtime: str) -> None:
    """Raise :class:`EncoderError` (one line, naming the fix) if ``runtime`` cannot run here."""
    if runtime not in RUNTIMES:
        raise EncoderError(f"unknown encoder runtime {runtime!r} (one of {', '.join(RUNTIMES)})")
    if runtime == OPENVINO:
        from clipsearch.encoder.openvino_session import openvino_available

        if not openvino_available():
            raise EncoderError(
                "CLIPSEARCH_ENCODER_RUNTIME=openvino needs the openvino package, which is not "
                f"installed: {OPENVINO_EXTRA}"
            )


def session_factory(runtime: str, *, threads: int = 0) -> SessionFactory:
    """path -> loaded :class:`Session` for ``runtime`` (``int8`` runs on ONNX Runtime too:
    the folder, not the runtime, holds the int8 graphs)."""
    check_runtime(runtime)
    if runtime == OPENVINO:
        from clipsearch.encoder.openvino_session import OpenVinoSession

        return lambda path: OpenVinoSession(path, threads=threads)
    from clipsearch.encoder.ort_session import OrtSession

    return lambda path: OrtSession(path, threads=threads)
