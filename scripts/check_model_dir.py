"""Check a model folder with ONNX Runtime alone (no torch): contract, text length, recall.

Runs in the gateway venv::

    .venv/bin/python scripts/check_model_dir.py services/encoder/models/shapes

1. ``clipsearch.json``'s fingerprint and file hashes match the files.
2. Inputs are ``input_ids``/``attention_mask`` (int32) and ``pixel_values`` (float32).
3. Text at 77 tokens and trimmed to the longest caption give the same embedding
   (exactly for fp32; reported only for int8, whose activation ranges include padding).
4. Held-out R@1/5/10 both ways, from PNG files through the project's tokenizer and a
   numpy preprocessing (bicubic resize of the shortest side, centre crop, CLIP normalise).
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from clipsearch.demo import shapes
from clipsearch.encoder.quantize import METADATA_FILE, file_entries, fingerprint
from clipsearch.encoder.tokenizer import get_tokenizer


def preprocess(path: Path, size: int, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """File -> float32 [3,size,size], as clip-server prepares pictures."""
    with Image.open(path) as image:
        image = image.convert("RGB")
        scale = size / min(image.size)
        resized = image.resize(
            (max(size, round(image.width * scale)), max(size, round(image.height * scale))),
            Image.Resampling.BICUBIC,
        )
    left, top = (resized.width - size) // 2, (resized.height - size) // 2
    pixels = np.asarray(resized.crop((left, top, left + size, top + size)), dtype=np.float32)
    return ((pixels / 255.0 - mean) / std).transpose(2, 0, 1)


def recall(similarity: np.ndarray) -> dict[str, float]:
    """R@1/5/10 when query i's only right answer is item i."""
    correct = np.diag(similarity)
    rank = (similarity > correct[:, None]).sum(axis=1)
    return {f"R@{k}": round(float((rank < k).mean()), 4) for k in (1, 5, 10)}


def normalise(x: np.ndarray) -> np.ndarray:
    """Rows to unit length."""
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def main() -> int:
    """Run the checks; exit non-zero on a broken contract."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--captions", type=Path, help="captions.csv (default: generate)")
    parser.add_argument("--n", type=int, default=1000, help="held-out pictures to generate")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    meta = json.loads((args.model / METADATA_FILE).read_text())
    assert meta["fingerprint"] == fingerprint(args.model), "fingerprint mismatch"
    assert meta["files"] == file_entries(args.model), "file hashes mismatch"
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    cpu = ["CPUExecutionProvider"]
    text = ort.InferenceSession(str(args.model / "textual.onnx"), options, providers=cpu)
    visual = ort.InferenceSession(str(args.model / "visual.onnx"), options, providers=cpu)
    names = {i.name: i.type for i in text.get_inputs()}
    assert names == {"input_ids": "tensor(int32)", "attention_mask": "tensor(int32)"}, names
    assert [(i.name, i.type) for i in visual.get_inputs()] == [("pixel_values", "tensor(float)")]

    with tempfile.TemporaryDirectory() as tmp:
        csv_path = args.captions
        if csv_path is None:
            shapes.generate(Path(tmp), args.n, shapes.HELDOUT_SEED)
            csv_path = Path(tmp) / "captions.csv"
        with csv_path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        captions = [r["caption"] for r in rows]
        ids, mask = get_tokenizer().tokenize(captions, context_length=meta["context_length"])
        started = time.time()
        full = text.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        length = int(mask.sum(axis=1).max())
        trimmed = text.run(
            None, {"input_ids": ids[:, :length], "attention_mask": mask[:, :length]}
        )[0]
        text_seconds = time.time() - started
        length_diff = float(np.abs(full - trimmed).max())
        mean = np.array(meta["mean"], dtype=np.float32)
        std = np.array(meta["std"], dtype=np.float32)
        started = time.time()
        images = []
        for start in range(0, len(rows), 64):
            batch = np.stack(
                [
                    preprocess(csv_path.parent / r["image_path"], meta["image_size"], mean, std)
                    for r in rows[start : start + 64]
                ]
            )
            images.append(visual.run(None, {"pixel_values": batch})[0])
        image_seconds = time.time() - started
    image_emb, text_emb = normalise(np.concatenate(images)), normalise(full)
    assert image_emb.shape[1] == meta["dim"], image_emb.shape
    sim = text_emb @ image_emb.T
    result = {
        "model": meta["name"],
        "n": len(rows),
        "text_to_image": recall(sim),
        "image_to_text": recall(sim.T),
        "max_abs_diff_77_vs_trimmed": length_diff,
        "trimmed_length": length,
        "images_per_s": round(len(rows) / image_seconds, 1),
        "text_seconds_77_plus_trimmed": round(text_seconds, 2),
    }
    print(f"{'direction':<15}{'R@1':>8}{'R@5':>8}{'R@10':>8}")
    for direction in ("text_to_image", "image_to_text"):
        r = result[direction]
        assert isinstance(r, dict)
        print(f"{direction:<15}{r['R@1']:>8.3f}{r['R@5']:>8.3f}{r['R@10']:>8.3f}")
    print(json.dumps(result))
    # Dynamic int8 quantises activations with a range taken over the whole tensor, padding
    # included, so only unquantised models must match exactly.
    exact = "quantization" not in meta
    return 0 if length_diff < 1e-4 or not exact else 1


if __name__ == "__main__":
    raise SystemExit(main())
