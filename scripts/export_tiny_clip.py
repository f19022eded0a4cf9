"""Export the trained tiny CLIP to clip-server's ONNX layout (fp32, plus an int8 copy).

Run in ``.venv-train`` after ``scripts/train_tiny_clip.py``::

    .venv-train/bin/python scripts/export_tiny_clip.py \
        --out services/encoder/models/shapes --int8-out .cache/tiny_clip/shapes-int8

Writes ``textual.onnx`` (``input_ids``, ``attention_mask`` int32 [B,L] -> [B,D]),
``visual.onnx`` (``pixel_values`` float32 [B,3,224,224] -> [B,D]) and ``clipsearch.json``.
Batch and text length are dynamic. Outputs are the projected, *unnormalised* embeddings.
Checks ONNX Runtime against PyTorch before writing the metadata.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from clipsearch.encoder.quantize import quantize_model_dir, write_metadata
from clipsearch.encoder.tokenizer import get_tokenizer
from tiny_clip.model import (
    CLIP_MEAN,
    CLIP_STD,
    TextualExport,
    TinyClip,
    TinyClipConfig,
    VisualExport,
)

ROOT = Path(__file__).resolve().parent.parent
OPSET = 17


def load(checkpoint: Path) -> tuple[TinyClip, dict[str, object]]:
    """The trained model (eval mode) and its checkpoint record."""
    record = torch.load(checkpoint, map_location="cpu", weights_only=False)
    model = TinyClip(TinyClipConfig(**record["config"]), record["vocabulary"])
    model.load_state_dict(record["state_dict"])
    return model.eval(), record


def export(model: TinyClip, out: Path) -> None:
    """Write ``textual.onnx`` and ``visual.onnx`` with dynamic batch and text length."""
    out.mkdir(parents=True, exist_ok=True)
    ids, mask = get_tokenizer().tokenize(["a red circle", "a blue square above a yellow star"])
    torch.onnx.export(
        TextualExport(model),
        (torch.from_numpy(ids), torch.from_numpy(mask)),
        str(out / "textual.onnx"),
        input_names=["input_ids", "attention_mask"],
        output_names=["embeddings"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "length"},
            "attention_mask": {0: "batch", 1: "length"},
            "embeddings": {0: "batch"},
        },
        opset_version=OPSET,
        dynamo=False,
        do_constant_folding=True,
    )
    size = model.cfg.image_size
    torch.onnx.export(
        VisualExport(model),
        (torch.randn(2, 3, size, size),),
        str(out / "visual.onnx"),
        input_names=["pixel_values"],
        output_names=["embeddings"],
        dynamic_axes={"pixel_values": {0: "batch"}, "embeddings": {0: "batch"}},
        opset_version=OPSET,
        dynamo=False,
        do_constant_folding=True,
    )


@torch.no_grad()
def check_against_torch(model: TinyClip, out: Path) -> dict[str, float]:
    """Max |ORT - torch| on images and on texts at two lengths; raises when off."""
    texts = ["a small red circle on the left", "an orange cross to the right of a green star", ""]
    ids, mask = get_tokenizer().tokenize(texts)
    text_sess = ort.InferenceSession(str(out / "textual.onnx"), providers=["CPUExecutionProvider"])
    reference = model.textual(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    full = text_sess.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    length = int(mask.sum(axis=1).max())
    trimmed = text_sess.run(
        None, {"input_ids": ids[:, :length], "attention_mask": mask[:, :length]}
    )[0]
    pixels = torch.randn(3, 3, model.cfg.image_size, model.cfg.image_size)
    image_sess = ort.InferenceSession(str(out / "visual.onnx"), providers=["CPUExecutionProvider"])
    image = image_sess.run(None, {"pixel_values": pixels.numpy()})[0]
    diffs = {
        "text_vs_torch": float(np.abs(full - reference).max()),
        "text_trimmed_vs_77": float(np.abs(trimmed - full).max()),
        "image_vs_torch": float(np.abs(image - model.visual(pixels).numpy()).max()),
    }
    print("max |diff|", diffs)
    if max(diffs.values()) > 1e-4:
        raise SystemExit(f"ONNX export differs from PyTorch: {diffs}")
    return diffs


def main() -> int:
    """Export fp32, check it, write metadata, and write the int8 copy."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=ROOT / ".cache/tiny_clip/checkpoint.pt")
    parser.add_argument("--out", type=Path, default=ROOT / "services/encoder/models/shapes")
    parser.add_argument("--int8-out", type=Path, default=ROOT / ".cache/tiny_clip/shapes-int8")
    args = parser.parse_args()

    torch.set_num_threads(1)
    model, record = load(args.checkpoint)
    export(model, args.out)
    check_against_torch(model, args.out)
    metadata = write_metadata(
        args.out,
        name="shapes-tiny",
        dim=model.cfg.embed_dim,
        image_size=model.cfg.image_size,
        mean=list(CLIP_MEAN),
        std=list(CLIP_STD),
        context_length=model.cfg.context_length,
        dynamic_text_length=True,
        tokenizer="CLIP BPE (bpe_simple_vocab_16e6), lower-cased, pooled at EOT",
        normalised_outputs=False,
        training={
            "data": "clipsearch.demo.shapes, train seed 0",
            "steps": record["steps"],
            "minutes": round(float(record["minutes"]), 1),  # type: ignore[arg-type]
            "architecture": record["config"],
        },
    )
    print(f"wrote {args.out}: fingerprint {metadata['fingerprint']}")
    quantized = quantize_model_dir(args.out, args.int8_out)
    print(f"wrote {args.int8_out}: fingerprint {quantized['fingerprint']}")
    for folder in (args.out, args.int8_out):
        sizes = {p.name: p.stat().st_size for p in sorted(folder.glob("*.onnx"))}
        print(folder, sizes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
