"""Export an open_clip model into clip-server's ONNX layout, with a dynamic text length.

Runs in the export venv (``make export-venv``: torch, torchvision, open_clip, onnx)::

    .venv-export/bin/python scripts/export_open_clip.py --model ViT-B-32 --pretrained openai \\
        --out models/ViT-B-32-openai

writes a folder that the gateway's local encoder and clip-server (``model_path``) both load:

* ``textual.onnx``: ``input_ids``, ``attention_mask`` int32 [B, L] -> [B, D] float32, with
  dynamic batch *and* sequence axes, so callers may trim padding to the longest text.
* ``visual.onnx``: ``pixel_values`` float32 [B, 3, S, S] -> [B, D] float32, dynamic batch.
* ``clipsearch.json``: name, dim, image size, mean/std, context length, fingerprint and the
  sha256 and size of each file.

``--pretrained`` is anything ``open_clip.create_model`` takes (a tag such as ``openai``,
which downloads the weights, or a local checkpoint file). ``--random-init`` builds the same
architecture with seeded random weights instead: for tests on machines without the weights.
Embeddings are not normalised (as open_clip's ``encode_text``/``encode_image``); the
gateway L2-normalises them.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import open_clip
import torch
from open_clip.transformer import ResidualAttentionBlock
from torch import nn
from torch.nn import functional

OPSET = 17
TEXT_INPUTS = ("input_ids", "attention_mask")
IMAGE_INPUT = "pixel_values"
# Added to the attention scores of padding keys. Finite on purpose: a row whose keys are all
# padding then stays a plain (shifted) softmax instead of NaN, which would leak into every
# row of the next layer through 0 * NaN.
_PAD_PENALTY = -1e4


def build_model(name: str, pretrained: str | None, seed: int) -> nn.Module:
    """The open_clip model in eval mode, fp32 on CPU; random weights when ``pretrained`` is None.

    The seed makes ``--random-init`` reproducible: the tests rebuild the same weights with
    ``torch.manual_seed(seed)`` + ``open_clip.create_model`` and compare against them.
    """
    torch.manual_seed(seed)
    model = open_clip.create_model(name, pretrained=pretrained, device="cpu", precision="fp32")
    return model.float().eval()


class TextualGraph(nn.Module):
    """open_clip's causal text tower, rewritten so that the sequence axis exports dynamically.

    With ``nn.MultiheadAttention`` the ONNX exporter bakes the traced length into the graph;
    here attention is plain matmuls, and the positional embedding and causal mask are sliced
    to the input length. The weights are the model's own modules, not copies.

    ``attention_mask`` masks padding keys. For CLIP-tokenised input (real tokens form a
    prefix, the end-of-text token last among them) no real position can see a padding key
    through the causal mask anyway, so the pooled output equals open_clip's exactly; the
    input is consumed because clip-server always feeds it and rejects a graph without it.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        _check_text_tower(model)
        self.token_embedding = model.token_embedding
        self.positional_embedding = model.positional_embedding
        self.blocks = model.transformer.resblocks
        self.ln_final = model.ln_final
        self.text_projection = model.text_projection
        # open_clip's own causal mask (-inf above the diagonal), as a buffer to slice.
        self.register_buffer("causal_mask", model.attn_mask.clone().float(), persistent=False)

    def _attention(self, block: ResidualAttentionBlock, x: torch.Tensor, mask: torch.Tensor):
        mha = block.attn
        heads = mha.num_heads
        qkv = functional.linear(x, mha.in_proj_weight, mha.in_proj_bias)
        q, k, v = (t.unflatten(-1, (heads, -1)).transpose(1, 2) for t in qkv.chunk(3, dim=-1))
        scale = q.shape[-1] ** -0.5
        scores = (q * scale) @ k.transpose(-2, -1) + mask
        out = (scores.softmax(dim=-1) @ v).transpose(1, 2).flatten(2)
        return mha.out_proj(out)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        ids = input_ids.long()
        length = ids.shape[1]
        x = self.token_embedding(ids) + self.positional_embedding[:length]
        padding = (1 - attention_mask.float()) * _PAD_PENALTY  # [B, L], 0 on real tokens
        mask = self.causal_mask[:length, :length] + padding[:, None, None, :]
        for block in self.blocks:
            x = x + block.ls_1(self._attention(block, block.ln_1(x), mask))
            x = x + block.ls_2(block.mlp(block.ln_2(x)))
        x = self.ln_final(x)
        # Pool at the end-of-text token: CLIP gives it the highest id (open_clip's 'argmax').
        eot = ids.argmax(dim=-1)
        pooled = torch.gather(x, 1, eot[:, None, None].expand(-1, 1, x.shape[-1])).squeeze(1)
        if isinstance(self.text_projection, nn.Linear):
            return self.text_projection(pooled)
        return pooled @ self.text_projection


def _check_text_tower(model: nn.Module) -> None:
    """Refuse, with a reason, the open_clip text towers that TextualGraph does not rewrite."""
    problems = []
    if not hasattr(model, "token_embedding"):
        problems.append("the text tower is not open_clip's built-in one (CustomTextCLIP/HF)")
    elif getattr(model, "text_pool_type", None) != "argmax":
        problems.append(f"text pooling is {getattr(model, 'text_pool_type', None)!r}, not argmax")
    elif getattr(model, "attn_mask", None) is None:
        problems.append("the text tower is not causal")
    else:
        for block in model.transformer.resblocks:
            if type(block) is not ResidualAttentionBlock or hasattr(block, "ln_1_kv"):
                problems.append(f"text block {type(block).__name__} is not supported")
                break
            if not block.attn._qkv_same_embed_dim:
                problems.append("attention with separate q/k/v projections is not supported")
                break
    if problems:
        raise SystemExit(f"cannot export this text tower: {'; '.join(problems)}")


class VisualGraph(nn.Module):
    """The image tower as is: its sequence length is fixed by the image size."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.visual = model.visual

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.visual(pixel_values)


@contextlib.contextmanager
def _no_fused_attention() -> Iterator[None]:
    """Keep ``nn.MultiheadAttention`` off its fused fast path (exported with fixed shapes)."""
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter is deprecated but is the one that handles this graph
            # (opset 17, dynamic axes by name); the warning would only be noise in the log.
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


def export_textual(model: nn.Module, path: Path, context_length: int) -> None:
    """Write ``textual.onnx``; traced at a length other than the context, to prove it dynamic."""
    graph = TextualGraph(model).eval()
    length = min(13, context_length)
    ids = torch.zeros((2, length), dtype=torch.int32)
    ids[:, 0], ids[:, 1], ids[0, 2] = 49406, 320, 49407
    ids[1, 2:5] = torch.tensor([1929, 539, 49407], dtype=torch.int32)
    mask = (ids != 0).to(torch.int32)
    dynamic = {0: "batch", 1: "sequence"}
    with torch.no_grad(), _no_fused_attention():
        torch.onnx.export(
            graph,
            (ids, mask),
            str(path),
            input_names=list(TEXT_INPUTS),
            output_names=["text_embeds"],
            dynamic_axes={
                "input_ids": dynamic,
                "attention_mask": dynamic,
                "text_embeds": {0: "batch"},
            },
            opset_version=OPSET,
            dynamo=False,
            do_constant_folding=True,
        )


def export_visual(model: nn.Module, path: Path, image_size: int) -> None:
    """Write ``visual.onnx`` with a dynamic batch axis (traced with batch 2, not 1)."""
    pixels = torch.randn((2, 3, image_size, image_size), dtype=torch.float32)
    with torch.no_grad(), _no_fused_attention():
        torch.onnx.export(
            VisualGraph(model).eval(),
            (pixels,),
            str(path),
            input_names=[IMAGE_INPUT],
            output_names=["image_embeds"],
            dynamic_axes={IMAGE_INPUT: {0: "batch"}, "image_embeds": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
            do_constant_folding=True,
        )


def _image_size(model: nn.Module) -> int:
    """The square input size of the image tower (open_clip may store it as a pair)."""
    size = open_clip.get_model_preprocess_cfg(model)["size"]
    return int(size) if isinstance(size, int) else int(size[0])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def model_card(model: nn.Module, name: str, out: Path, context_length: int) -> dict:
    """The ``clipsearch.json`` contents for the exported files in ``out``."""
    from clipsearch.encoder.model_config import fingerprint_files

    cfg = open_clip.get_model_preprocess_cfg(model)
    files = {
        f: {"sha256": _sha256(out / f), "bytes": (out / f).stat().st_size}
        for f in ("textual.onnx", "visual.onnx")
    }
    proj = model.text_projection
    dim = proj.out_features if isinstance(proj, nn.Linear) else proj.shape[-1]
    return {
        "name": name,
        "dim": int(dim),
        "image_size": _image_size(model),
        "mean": [float(v) for v in cfg["mean"]],
        "std": [float(v) for v in cfg["std"]],
        "context_length": context_length,
        "dynamic_text_length": True,
        "fingerprint": fingerprint_files(out / "textual.onnx", out / "visual.onnx"),
        "files": files,
    }


def self_check(model: nn.Module, out: Path, image_size: int, context_length: int) -> dict:
    """Run the written graphs in ONNX Runtime against open_clip's forward; return max |diff|.

    Texts go through the project's tokenizer (what the gateway feeds) and run trimmed to
    their longest real length, the case that a baked-in sequence length would break.
    """
    import onnxruntime as ort

    from clipsearch.encoder.tokenizer import get_tokenizer

    texts = ["a photo of a dog", "two red squares above a small yellow star on a blue background"]
    ids, mask = get_tokenizer().tokenize(texts, context_length)
    trim = int(mask.sum(axis=1).max())
    opts = ort.SessionOptions()
    text_sess = ort.InferenceSession(str(out / "textual.onnx"), opts, ["CPUExecutionProvider"])
    image_sess = ort.InferenceSession(str(out / "visual.onnx"), opts, ["CPUExecutionProvider"])
    got_text = text_sess.run(None, {"input_ids": ids[:, :trim], "attention_mask": mask[:, :trim]})
    pixels = np.random.default_rng(0).standard_normal((3, 3, image_size, image_size), np.float32)
    got_image = image_sess.run(None, {IMAGE_INPUT: pixels})
    with torch.no_grad():
        want_text = model.encode_text(torch.from_numpy(ids).long()).numpy()
        want_image = model.encode_image(torch.from_numpy(pixels)).numpy()
    return {
        "text_max_abs_diff": float(np.abs(got_text[0] - want_text).max()),
        "image_max_abs_diff": float(np.abs(got_image[0] - want_image).max()),
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints one line per step with its time."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="ViT-B-32", help="open_clip model name")
    parser.add_argument("--pretrained", default="openai", help="open_clip tag or checkpoint")
    parser.add_argument("--out", type=Path, required=True, help="folder to write")
    parser.add_argument("--random-init", action="store_true", help="seeded random weights")
    parser.add_argument("--seed", type=int, default=0, help="seed for --random-init")
    parser.add_argument("--name", help="name in clipsearch.json (default MODEL::PRETRAINED)")
    parser.add_argument("--no-check", action="store_true", help="skip the ONNX Runtime check")
    args = parser.parse_args(argv)

    torch.set_grad_enabled(False)
    started = time.perf_counter()

    def step(msg: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {msg}", flush=True)

    pretrained = None if args.random_init else args.pretrained
    if args.random_init:
        tag = f"random-init-seed{args.seed}"
    else:
        tag = Path(args.pretrained).stem if Path(args.pretrained).is_file() else args.pretrained
    name = args.name or f"{args.model}::{tag}"
    try:
        model = build_model(args.model, pretrained, args.seed)
    except RuntimeError as exc:
        # open_clip raises RuntimeError when the weights cannot be downloaded (offline).
        print(
            f"error: cannot load {args.model} with pretrained={pretrained!r}: {exc}\n"
            "Pass a local checkpoint file to --pretrained, or --random-init to test.",
            file=sys.stderr,
        )
        return 2
    context_length = int(model.context_length)
    image_size = _image_size(model)
    step(f"built {name}: context {context_length}, image {image_size}")

    # Build next to the target and move in only after the check: a failed or interrupted
    # export never leaves a half-written model where an encoder would load it.
    work = args.out.with_name(args.out.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    export_textual(model, work / "textual.onnx", context_length)
    step("wrote textual.onnx")
    export_visual(model, work / "visual.onnx", image_size)
    step("wrote visual.onnx")

    card = model_card(model, name, work, context_length)
    (work / "clipsearch.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    step(f"wrote clipsearch.json: dim {card['dim']}, fingerprint {card['fingerprint'][:16]}…")

    if not args.no_check:
        diffs = self_check(model, work, image_size, context_length)
        step(f"ONNX Runtime vs open_clip: {json.dumps(diffs)}")
        if max(diffs.values()) > 1e-3:
            print(f"error: the graphs in {work} disagree with open_clip", file=sys.stderr)
            return 1

    args.out.mkdir(parents=True, exist_ok=True)
    # clipsearch.json last: once it is there, the files it describes are too.
    for file in ("textual.onnx", "visual.onnx", "clipsearch.json"):
        os.replace(work / file, args.out / file)
    work.rmdir()
    step(f"done: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
