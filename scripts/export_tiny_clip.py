"""Export the trained tiny CLIP to clip-server's ONNX layout (fp32, plus an int8 copy).

Run in ``.venv-train`` after ``scripts/train_tiny_clip.py``::

    .venv-train/bin/python scripts/export_tiny_clip.py \
        --out services/encoder/models/shapes --int8-out .cache/tiny_clip/shapes-int8

Writes ``textual.onnx`` (``input_ids``, ``attention_mask`` int32 [B,L] -> [B,D]),
``visual.onnx`` (``pixel_values`` float32 [B,3,224,224] -> [B,D]) and ``clipsearch.json``.
Batch and text length are dynamic. Outputs are the projected, *unnormalised* embeddings.
Checks ONNX Runtime against PyTorch before writing the metadata.

A bilingual checkpoint (``train_tiny_clip.py --lang both``) is written in Immich's model-folder
layout instead (default ``services/encoder/models/shapes-bilingual``; no int8 copy)::

    config.json                   open_clip-style: embed_dim, vision_cfg, text_cfg.context_length
    textual/model.onnx            input_ids, attention_mask int32 [B,L] -> [B,D]  (as M-CLIP)
    textual/tokenizer.json        the WordPiece trained by train_tiny_clip.py (no padding set)
    textual/tokenizer_config.json pad_token, model_max_length, ...
    visual/model.onnx             image float32 [B,3,224,224] -> [B,D]  (Immich's input name)
    visual/preprocess_cfg.json    size, mean, std, interpolation, resize_mode
    clipsearch.json               name, dim, languages, fingerprint, files, training
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tokenizers import Tokenizer

from clipsearch.encoder.model_config import fingerprint_files
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
from tiny_clip.tokenizer import PAD_TOKEN, padded

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


IMMICH_FILES = (
    "config.json",
    "textual/model.onnx",
    "textual/tokenizer.json",
    "textual/tokenizer_config.json",
    "visual/model.onnx",
    "visual/preprocess_cfg.json",
)


def _onnx(
    module: torch.nn.Module, args: tuple[torch.Tensor, ...], path: Path, inputs: list[str]
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    axes: dict[str, dict[int, str]] = {name: {0: "batch"} for name in inputs}
    if inputs == ["input_ids", "attention_mask"]:
        axes = {name: {0: "batch", 1: "length"} for name in inputs}
    torch.onnx.export(
        module,
        args,
        str(path),
        input_names=inputs,
        output_names=["embeddings"],
        dynamic_axes=axes | {"embeddings": {0: "batch"}},
        opset_version=OPSET,
        dynamo=False,
        do_constant_folding=True,
    )


@torch.no_grad()
def export_immich(model: TinyClip, record: dict[str, object], out: Path) -> dict[str, object]:
    """Write the Immich-layout folder of a bilingual checkpoint and check it against torch."""
    cfg = model.cfg
    tokenizer = Tokenizer.from_str(str(record["tokenizer"]))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    (out / "textual").mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(out / "textual" / "tokenizer.json"))
    encoder = padded(Tokenizer.from_str(tokenizer.to_str()), cfg.context_length)
    samples = ["a red circle", "左边一个小的红色圆形", "一个蓝色正方形在一个橙色星形的下面", ""]
    encodings = encoder.encode_batch(samples)
    ids = np.array([e.ids for e in encodings], dtype=np.int32)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int32)
    _onnx(
        TextualExport(model),
        (torch.from_numpy(ids), torch.from_numpy(mask)),
        out / "textual" / "model.onnx",
        ["input_ids", "attention_mask"],
    )
    size = cfg.image_size
    _onnx(
        VisualExport(model),
        (torch.randn(2, 3, size, size),),
        out / "visual" / "model.onnx",
        ["image"],
    )
    config = {
        "embed_dim": cfg.embed_dim,
        "vision_cfg": {
            "image_size": size,
            "layers": cfg.vision_layers,
            "width": cfg.vision_width,
            "heads": cfg.vision_heads,
            "patch_size": cfg.patch_size,
        },
        "text_cfg": {
            "context_length": cfg.context_length,
            "vocab_size": cfg.vocab_size,
            "width": cfg.text_width,
            "heads": cfg.text_heads,
            "layers": cfg.text_layers,
            "pooler_type": "mean_pooler",
        },
    }
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": cfg.context_length,
        "pad_token": PAD_TOKEN,
        "unk_token": "[UNK]",
        "cls_token": "[CLS]",
        "sep_token": "[SEP]",
        "do_lower_case": True,
    }
    preprocess = {
        "size": [size, size],
        "mode": "RGB",
        "mean": list(CLIP_MEAN),
        "std": list(CLIP_STD),
        "interpolation": "bicubic",
        "resize_mode": "shortest",
        "fill_color": 0,
    }
    for name, value in (
        ("config.json", config),
        ("textual/tokenizer_config.json", tokenizer_config),
        ("visual/preprocess_cfg.json", preprocess),
    ):
        (out / name).write_text(
            json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    # ORT vs torch, padded to the context length (as Immich feeds) and trimmed.
    text_sess = ort.InferenceSession(
        str(out / "textual/model.onnx"), providers=["CPUExecutionProvider"]
    )
    reference = model.textual(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    full = text_sess.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    length = int(mask.sum(axis=1).max())
    trimmed = text_sess.run(
        None, {"input_ids": ids[:, :length], "attention_mask": mask[:, :length]}
    )[0]
    pixels = torch.randn(3, 3, size, size)
    image_sess = ort.InferenceSession(
        str(out / "visual/model.onnx"), providers=["CPUExecutionProvider"]
    )
    image = image_sess.run(None, {"image": pixels.numpy()})[0]
    diffs = {
        "text_vs_torch": float(np.abs(full - reference).max()),
        "text_trimmed_vs_padded": float(np.abs(trimmed - full).max()),
        "image_vs_torch": float(np.abs(image - model.visual(pixels).numpy()).max()),
    }
    print("max |diff|", diffs)
    if max(diffs.values()) > 1e-4:
        raise SystemExit(f"ONNX export differs from PyTorch: {diffs}")
    metrics = {"en": record["metrics"], "zh": record["metrics_zh"]}
    metadata: dict[str, object] = {
        "name": "shapes-bilingual",
        "layout": "immich",
        "dim": cfg.embed_dim,
        "languages": ["en", "zh"],
        "image_size": size,
        "mean": list(CLIP_MEAN),
        "std": list(CLIP_STD),
        "context_length": cfg.context_length,
        "dynamic_text_length": True,
        "tokenizer": "WordPiece trained here, BERT normalisation, one token per CJK char",
        "text_pooling": "mean over attention_mask",
        "normalised_outputs": False,
        "training": {
            "data": "clipsearch.demo.shapes, train seed 0, "
            + (
                "both captions of every picture per step"
                if record.get("both_captions")
                else "English or Chinese caption per sample"
            ),
            "steps": record["steps"],
            "minutes": round(float(record["minutes"]), 1),  # type: ignore[arg-type]
            "architecture": record["config"],
            "heldout_pytorch": {
                lang: {k: round(float(v), 3) for k, v in m.items()}  # type: ignore[attr-defined]
                for lang, m in metrics.items()
            },
        },
        "fingerprint": fingerprint_files(out / "textual/model.onnx", out / "visual/model.onnx"),
        "fingerprint_definition": "sha256(textual/model.onnx bytes + visual/model.onnx bytes)",
        "files": {
            name: {"sha256": fingerprint_files(out / name), "bytes": (out / name).stat().st_size}
            for name in IMMICH_FILES
        },
    }
    (out / "clipsearch.json").write_text(
        json.dumps(metadata, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return metadata


def main() -> int:
    """Export fp32, check it, write metadata, and write the int8 copy."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=ROOT / ".cache/tiny_clip/checkpoint.pt")
    parser.add_argument(
        "--out", type=Path, help="default: models/shapes or models/shapes-bilingual"
    )
    parser.add_argument("--int8-out", type=Path, default=ROOT / ".cache/tiny_clip/shapes-int8")
    args = parser.parse_args()

    torch.set_num_threads(1)
    model, record = load(args.checkpoint)
    if model.cfg.text_pooling == "mean":
        out = args.out or ROOT / "services/encoder/models/shapes-bilingual"
        metadata = export_immich(model, record, out)
        print(f"wrote {out}: fingerprint {metadata['fingerprint']}")
        files = metadata["files"]
        assert isinstance(files, dict)
        print({name: entry["bytes"] for name, entry in files.items()})
        return 0
    args.out = args.out or ROOT / "services/encoder/models/shapes"
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
