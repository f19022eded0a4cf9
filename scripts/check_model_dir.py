"""Check a model folder with ONNX Runtime alone (no torch): contract, text length, recall.

Runs in the gateway venv::

    .venv/bin/python scripts/check_model_dir.py services/encoder/models/shapes
    .venv/bin/python scripts/check_model_dir.py services/encoder/models/shapes-bilingual
    .venv/bin/python scripts/check_model_dir.py services/encoder/models/shapes --lang both

Two layouts: clip-server's (``textual.onnx``, ``visual.onnx``; the project's CLIP BPE
tokenizer) and Immich's (``textual/model.onnx`` + ``textual/tokenizer.json`` read by the
``tokenizers`` package and padded to ``config.json``'s ``text_cfg.context_length`` as Immich
does; ``visual/model.onnx`` with input ``image`` and ``visual/preprocess_cfg.json``).
``--lang both`` captions the held-out pictures in English and Chinese and reports recall
per language (the English-only model on Chinese captions is the baseline).

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
from clipsearch.encoder.model_config import fingerprint_files
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


class ImmichFolder:
    """An Immich-layout folder: sessions, tokenizer and preprocessing read from its files."""

    def __init__(self, folder: Path, options: ort.SessionOptions) -> None:
        from tokenizers import Tokenizer

        meta = json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))
        assert meta["fingerprint"] == fingerprint_files(
            folder / "textual/model.onnx", folder / "visual/model.onnx"
        ), "fingerprint mismatch"
        for name, entry in meta["files"].items():
            path = folder / name
            assert entry == {"sha256": fingerprint_files(path), "bytes": path.stat().st_size}, name
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        tok_cfg = json.loads((folder / "textual/tokenizer_config.json").read_text("utf-8"))
        self.pre = json.loads((folder / "visual/preprocess_cfg.json").read_text("utf-8"))
        self.context_length = int(config["text_cfg"]["context_length"])
        tokenizer = Tokenizer.from_file(str(folder / "textual/tokenizer.json"))
        pad = tok_cfg["pad_token"]
        tokenizer.enable_padding(
            length=self.context_length, pad_id=tokenizer.token_to_id(pad), pad_token=pad
        )
        tokenizer.enable_truncation(max_length=self.context_length)
        self.tokenizer = tokenizer
        self.meta = meta
        cpu = ["CPUExecutionProvider"]
        self.text = ort.InferenceSession(str(folder / "textual/model.onnx"), options, providers=cpu)
        self.visual = ort.InferenceSession(
            str(folder / "visual/model.onnx"), options, providers=cpu
        )
        names = {i.name: i.type for i in self.text.get_inputs()}
        assert names == {"input_ids": "tensor(int32)", "attention_mask": "tensor(int32)"}, names
        assert [(i.name, i.type) for i in self.visual.get_inputs()] == [("image", "tensor(float)")]
        assert self.pre["resize_mode"] == "shortest", self.pre
        assert self.pre["interpolation"] == "bicubic", self.pre

    def tokenize(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int32)
        return ids, np.array([e.attention_mask for e in encodings], dtype=np.int32)


def main() -> int:
    """Run the checks; exit non-zero on a broken contract."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--captions", type=Path, help="captions.csv (default: generate)")
    parser.add_argument("--n", type=int, default=1000, help="held-out pictures to generate")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--lang", choices=["en", "zh", "both"], default="en", help="captions")
    args = parser.parse_args()
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    if (args.model / "textual" / "model.onnx").is_file():
        return check_immich(args, ImmichFolder(args.model, options))

    meta = json.loads((args.model / METADATA_FILE).read_text())
    assert meta["fingerprint"] == fingerprint(args.model), "fingerprint mismatch"
    assert meta["files"] == file_entries(args.model), "file hashes mismatch"
    cpu = ["CPUExecutionProvider"]
    text = ort.InferenceSession(str(args.model / "textual.onnx"), options, providers=cpu)
    visual = ort.InferenceSession(str(args.model / "visual.onnx"), options, providers=cpu)
    names = {i.name: i.type for i in text.get_inputs()}
    assert names == {"input_ids": "tensor(int32)", "attention_mask": "tensor(int32)"}, names
    assert [(i.name, i.type) for i in visual.get_inputs()] == [("pixel_values", "tensor(float)")]

    with tempfile.TemporaryDirectory() as tmp:
        csv_path = args.captions
        if csv_path is None:
            shapes.generate(Path(tmp), args.n, shapes.HELDOUT_SEED, lang=args.lang)
            csv_path = Path(tmp) / "captions.csv"
        with csv_path.open(newline="", encoding="utf-8") as handle:
            all_rows = list(csv.DictReader(handle))
        rows = all_rows[:: 2 if args.lang == "both" else 1]  # one row per picture
        captions = [r["caption"] for r in all_rows]
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
    result = {
        "model": meta["name"],
        "n": len(rows),
        **report(text_emb, image_emb, all_rows),
        "max_abs_diff_77_vs_trimmed": length_diff,
        "trimmed_length": length,
        "images_per_s": round(len(rows) / image_seconds, 1),
        "text_seconds_77_plus_trimmed": round(text_seconds, 2),
    }
    print(json.dumps(result, ensure_ascii=False))
    # Dynamic int8 quantises activations with a range taken over the whole tensor, padding
    # included, so only unquantised models must match exactly.
    exact = "quantization" not in meta
    return 0 if length_diff < 1e-4 or not exact else 1


def report(
    text_emb: np.ndarray, image_emb: np.ndarray, rows: list[dict[str, str]]
) -> dict[str, object]:
    """Recall tables, one per language when the rows have a ``lang`` column (printed too).

    Rows of one language follow the pictures' order, so query i's answer is picture i."""
    langs = [r.get("lang") or "en" for r in rows]
    out: dict[str, object] = {}
    for lang in dict.fromkeys(langs):
        picked = [i for i, x in enumerate(langs) if x == lang]
        sim = text_emb[picked] @ image_emb.T
        out[lang] = {"text_to_image": recall(sim), "image_to_text": recall(sim.T)}
        print(f"lang {lang}: {len(picked)} captions")
        print(f"{'direction':<15}{'R@1':>8}{'R@5':>8}{'R@10':>8}")
        for direction in ("text_to_image", "image_to_text"):
            r = out[lang][direction]  # type: ignore[index]
            print(f"{direction:<15}{r['R@1']:>8.3f}{r['R@5']:>8.3f}{r['R@10']:>8.3f}")
    return out if len(out) > 1 else next(iter(out.values()))  # type: ignore[return-value]


def check_immich(args: argparse.Namespace, folder: ImmichFolder) -> int:
    """The Immich-layout checks: padded (as Immich feeds) vs trimmed text, recall per language."""
    mean = np.array(folder.pre["mean"], dtype=np.float32)
    std = np.array(folder.pre["std"], dtype=np.float32)
    size = int(folder.pre["size"][0])
    lang = "both" if args.lang == "en" else args.lang  # a bilingual model: both by default
    with tempfile.TemporaryDirectory() as tmp:
        shapes.generate(Path(tmp), args.n, shapes.HELDOUT_SEED, lang=lang)
        with (Path(tmp) / "captions.csv").open(newline="", encoding="utf-8") as handle:
            all_rows = list(csv.DictReader(handle))
        paths = list(dict.fromkeys(Path(tmp) / r["image_path"] for r in all_rows))
        ids, mask = folder.tokenize([r["caption"] for r in all_rows])
        full = folder.text.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        length = int(mask.sum(axis=1).max())
        trimmed = folder.text.run(
            None, {"input_ids": ids[:, :length], "attention_mask": mask[:, :length]}
        )[0]
        images = []
        for start in range(0, len(paths), 64):
            batch = np.stack([preprocess(p, size, mean, std) for p in paths[start : start + 64]])
            images.append(folder.visual.run(None, {"image": batch})[0])
    length_diff = float(np.abs(full - trimmed).max())
    result = {
        "model": folder.meta["name"],
        "n": len(paths),
        **report(normalise(full), normalise(np.concatenate(images)), all_rows),
        "max_abs_diff_padded_vs_trimmed": length_diff,
        "context_length": folder.context_length,
        "trimmed_length": length,
    }
    print(json.dumps(result, ensure_ascii=False))
    return 0 if length_diff < 1e-4 else 1


if __name__ == "__main__":
    raise SystemExit(main())
