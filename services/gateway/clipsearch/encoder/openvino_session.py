"""How a graph runs on OpenVINO: the same ONNX files, behind the same :class:`~clipsearch.
encoder.session.Session` protocol as :class:`~clipsearch.encoder.ort_session.OrtSession`.

Optional (``pip install 'clipsearch[openvino]'``). The precision is chosen from what the CPU
plugin reports, not assumed: ``bf16`` when its ``OPTIMIZATION_CAPABILITIES`` include BF16
(AVX512-BF16 or AMX), else ``f32``. bf16 runs the *same* weights (cosine to fp32 above 0.9999
in the tests), so the model keeps its fingerprint; int8 is a model of its own instead.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from clipsearch.encoder.protocol import EncoderError
from clipsearch.encoder.session import Dim, require_input, run_in_fixed_batches

_NP_TYPES: Mapping[str, type[np.generic]] = {
    "f32": np.float32,
    "i32": np.int32,
    "i64": np.int64,
}


def openvino_available() -> bool:
    """Whether the ``openvino`` package can be imported (without importing it)."""
    return importlib.util.find_spec("openvino") is not None


@lru_cache(maxsize=1)
def _core() -> Any:
    import openvino

    return openvino.Core()


@lru_cache(maxsize=1)
def cpu_precision() -> str:
    """``bf16`` if OpenVINO's CPU plugin can compute in bf16 on this machine, else ``f32``."""
    caps = _core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    return "bf16" if "BF16" in [str(c).upper() for c in caps] else "f32"


class OpenVinoSession:
    """One ONNX graph compiled by OpenVINO for the CPU.

    ``threads`` is OpenVINO's inference thread count (0 = its default, one per core).
    Latency mode: one request uses every core, as ONNX Runtime's intra-op pool does. An
    infer request is not thread-safe, so each calling thread gets its own (the encoder runs
    a text query beside an image chunk).
    """

    def __init__(self, path: Path, *, threads: int = 0, precision: str | None = None) -> None:
        try:
            core = _core()
            self.precision = precision or cpu_precision()
            config: dict[str, Any] = {
                "PERFORMANCE_HINT": "LATENCY",
                "INFERENCE_PRECISION_HINT": self.precision,
            }
            if threads:
                config["INFERENCE_NUM_THREADS"] = threads
            self._compiled = core.compile_model(core.read_model(os.fspath(path)), "CPU", config)
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses; report them as ours
            raise EncoderError(f"cannot load ONNX model {path} with OpenVINO: {exc}") from exc
        self.path = path
        # A Parameter node keeps the ONNX input name; a port may carry other tensor names too.
        self._inputs = {p.get_node().get_friendly_name(): p for p in self._compiled.inputs}
        self._output = self._compiled.output(0)
        self._local = threading.local()

    @property
    def input_names(self) -> list[str]:
        return list(self._inputs)

    def input_shape(self, name: str) -> list[Dim]:
        require_input(self.path, list(self._inputs), name)
        return _dims(self._inputs[name].get_partial_shape())

    def input_dtype(self, name: str) -> type[np.generic]:
        require_input(self.path, list(self._inputs), name)
        kind = self._inputs[name].get_element_type().get_type_name()
        if kind not in _NP_TYPES:
            raise EncoderError(f"{self.path}: input {name!r} has unsupported type {kind}")
        return _NP_TYPES[kind]

    @property
    def fixed_batch(self) -> int | None:
        first = next(iter(self._inputs))
        shape = self.input_shape(first)
        batch = shape[0] if shape else None
        return batch if isinstance(batch, int) else None

    @property
    def output_dim(self) -> int | None:
        shape = _dims(self._output.get_partial_shape())
        last = shape[-1] if shape else None
        return last if isinstance(last, int) else None

    def run(self, feeds: Mapping[str, npt.NDArray[np.generic]]) -> npt.NDArray[np.float32]:
        """The first output as float32 (batching as :class:`OrtSession` does)."""
        typed = {k: np.ascontiguousarray(v, dtype=self.input_dtype(k)) for k, v in feeds.items()}
        return run_in_fixed_batches(typed, self.fixed_batch, self._run_once, self.output_dim)

    def _run_once(self, typed: Mapping[str, npt.NDArray[np.generic]]) -> npt.NDArray[np.float32]:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        try:
            result = request.infer(dict(typed))
        except Exception as exc:
            raise EncoderError(f"{self.path.name} failed on OpenVINO: {exc}") from exc
        return np.array(result[self._output], dtype=np.float32)


def _dims(shape: Any) -> list[Dim]:
    return [d.get_length() if d.is_static else None for d in shape]
