"""Small random CLIP-shaped ONNX models in clip-server's layout, built with onnx.helper.

They have the real I/O contract (``input_ids``/``attention_mask`` int32 [B,L] → [B,D];
``pixel_values`` float32 [B,3,S,S] → [B,D]) but random weights, so tests exercise the
encoder's plumbing without a trained model. The text tower pools with the attention
mask, so trimming padding must not change its output.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

VOCAB = 49408


def _init(name: str, arr: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(arr, name=name)


def _save(graph: onnx.GraphProto, path: Path) -> None:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime the project allows
    onnx.checker.check_model(model)
    onnx.save(model, path)


def build_textual(path: Path, *, dim: int, seq: int | None, seed: int, hidden: int = 16) -> None:
    rng = np.random.default_rng(seed)
    seq_dim: int | str = seq if seq is not None else "seq"
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT32, ["batch", seq_dim])
    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT32, ["batch", seq_dim])
    out = helper.make_tensor_value_info("text_embeds", TensorProto.FLOAT, ["batch", dim])
    inits = [
        _init("tok_emb", rng.standard_normal((VOCAB, hidden)).astype(np.float32)),
        _init("w1", rng.standard_normal((hidden, hidden)).astype(np.float32)),
        _init("w2", rng.standard_normal((hidden, dim)).astype(np.float32)),
        _init("axis1", np.array([1], dtype=np.int64)),
        _init("axis2", np.array([2], dtype=np.int64)),
    ]
    nodes = [
        helper.make_node("Gather", ["tok_emb", "input_ids"], ["emb"]),
        helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["maskf", "axis2"], ["mask3"]),
        helper.make_node("Mul", ["emb", "mask3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "axis1"], ["summed"], keepdims=0),
        helper.make_node("ReduceSum", ["maskf", "axis1"], ["count"], keepdims=1),
        helper.make_node("Div", ["summed", "count"], ["pooled"]),
        helper.make_node("MatMul", ["pooled", "w1"], ["h"]),
        helper.make_node("Tanh", ["h"], ["t"]),
        helper.make_node("MatMul", ["t", "w2"], ["text_embeds"]),
    ]
    graph = helper.make_graph(nodes, "textual", [ids, mask], [out], initializer=inits)
    _save(graph, path)


def build_visual(path: Path, *, dim: int, image_size: int | None, seed: int) -> None:
    """Fixed size: a linear map of all pixels. Dynamic size: global average pool first."""
    rng = np.random.default_rng(seed)
    side: int | str = image_size if image_size is not None else "size"
    pix = helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch", 3, side, side])
    out = helper.make_tensor_value_info("image_embeds", TensorProto.FLOAT, ["batch", dim])
    if image_size is not None:
        width = 3 * image_size * image_size
        nodes = [helper.make_node("Flatten", ["pixel_values"], ["flat"], axis=1)]
    else:
        width = 3
        nodes = [
            helper.make_node("GlobalAveragePool", ["pixel_values"], ["gap"]),
            helper.make_node("Flatten", ["gap"], ["flat"], axis=1),
        ]
    scale = np.float32(1.0 / np.sqrt(width))
    w = (rng.standard_normal((width, dim)) * scale).astype(np.float32)
    nodes.append(helper.make_node("MatMul", ["flat", "w"], ["image_embeds"]))
    graph = helper.make_graph(nodes, "visual", [pix], [out], initializer=[_init("w", w)])
    _save(graph, path)


def build_model_dir(
    folder: Path,
    *,
    dim: int = 16,
    seq: int | None = None,
    image_size: int | None = 32,
    seed: int = 0,
    config: dict[str, object] | None = None,
) -> Path:
    """A model folder; ``seq=None`` makes the text length dynamic, ``77`` fixes it."""
    folder.mkdir(parents=True, exist_ok=True)
    build_textual(folder / "textual.onnx", dim=dim, seq=seq, seed=seed)
    build_visual(folder / "visual.onnx", dim=dim, image_size=image_size, seed=seed + 1)
    if config is not None:
        (folder / "clipsearch.json").write_text(json.dumps(config))
    return folder
