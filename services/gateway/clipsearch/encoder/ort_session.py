"""How a graph runs on ONNX Runtime: one CPU session behind the :class:`~clipsearch.encoder.
session.Session` protocol, with its input shapes and types exposed. All ONNX Runtime session
code lives here (OpenVINO's is :mod:`clipsearch.encoder.openvino_session`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from clipsearch.encoder.protocol import EncoderError
from clipsearch.encoder.session import Dim, require_input, run_in_fixed_batches

_NP_TYPES: Mapping[str, type[np.generic]] = {
    "tensor(float)": np.float32,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
}


class OrtSession:
    """One ``onnxruntime.InferenceSession`` on the CPU provider.

    ``threads`` is ONNX Runtime's intra-op pool size (0 = one per core). Inter-op
    parallelism is off: these graphs are a single chain of ops, and a second pool would
    only compete with the first for the same cores. Inputs are cast to the dtype the
    graph declares, so int64 token graphs (some exporters) work as well as int32 ones.

    ``spinning`` off (the default): between ops, idle intra-op threads sleep instead of
    busy-waiting for the next one. Spinning only pays on cores nothing else wants; here
    the same cores decode, preprocess and write the next pictures, and the spin burns
    their CPU. Measured with ``clipsearch bench ingest`` (BENCHMARKS.md): less CPU per
    ingested picture and a faster bare encoder on 2 shared cores.
    """

    def __init__(
        self,
        path: Path,
        *,
        threads: int = 0,
        spinning: bool = False,
        providers: tuple[str, ...] = ("CPUExecutionProvider",),
    ) -> None:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.add_session_config_entry("session.intra_op.allow_spinning", str(int(spinning)))
        try:
            self._session = ort.InferenceSession(
                os.fspath(path), sess_options=opts, providers=list(providers)
            )
        except Exception as exc:  # ORT raises its own exception types; report them as ours.
            raise EncoderError(f"cannot load ONNX model {path}: {exc}") from exc
        self.path = path
        self._inputs = {i.name: i for i in self._session.get_inputs()}
        self._output = self._session.get_outputs()[0]

    @property
    def input_names(self) -> list[str]:
        return list(self._inputs)

    def input_shape(self, name: str) -> list[Dim]:
        self._require(name)
        return list(self._inputs[name].shape)

    def input_dtype(self, name: str) -> type[np.generic]:
        self._require(name)
        kind = self._inputs[name].type
        if kind not in _NP_TYPES:
            raise EncoderError(f"{self.path}: input {name!r} has unsupported type {kind}")
        return _NP_TYPES[kind]

    @property
    def fixed_batch(self) -> int | None:
        """The batch size the graph fixes (Immich's exports fix 1), or None if dynamic."""
        first = next(iter(self._inputs.values()))
        batch = first.shape[0] if first.shape else None
        return batch if isinstance(batch, int) else None

    @property
    def output_dim(self) -> int | None:
        """The last output axis if the graph fixes it (the embedding size)."""
        shape = self._output.shape
        last = shape[-1] if shape else None
        return last if isinstance(last, int) else None

    def _require(self, name: str) -> None:
        require_input(self.path, list(self._inputs), name)

    def run(self, feeds: Mapping[str, npt.NDArray[np.generic]]) -> npt.NDArray[np.float32]:
        """The first output as float32; ONNX Runtime releases the GIL while it runs.

        A graph with a fixed batch size runs the rows in slices of that size (the last one
        padded by repeating its final row, the padding's outputs dropped)."""
        typed = {k: np.ascontiguousarray(v, dtype=self.input_dtype(k)) for k, v in feeds.items()}
        return run_in_fixed_batches(typed, self.fixed_batch, self._run_once, self.output_dim)

    def _run_once(self, typed: Mapping[str, npt.NDArray[np.generic]]) -> npt.NDArray[np.float32]:
        try:
            (out,) = self._session.run([self._output.name], typed)
        except Exception as exc:
            raise EncoderError(f"{self.path.name} failed: {exc}") from exc
        return np.asarray(out, dtype=np.float32)
