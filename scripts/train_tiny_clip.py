"""Train the tiny ``shapes`` CLIP on CPU within a wall-clock budget.

Run in ``.venv-train`` (``scripts/build_train_venv.sh``)::

    nice -n -10 .venv-train/bin/python scripts/train_tiny_clip.py --minutes 18

Training pictures are rendered once by :mod:`clipsearch.demo.shapes` and cached as a uint8
array (``.cache/tiny_clip/``), so a step costs only the model. The learning-rate schedule
is a warm-up then cosine decay over a step count fixed after timing the first steps, so
the run ends on time on a busy machine. Writes ``checkpoint.pt`` (weights, config, token
list) for ``scripts/export_tiny_clip.py``.

``--lang both`` trains the bilingual model: a WordPiece tokenizer is first trained on the
English and Chinese training captions (``tiny_clip/tokenizer.py``), every training picture
is paired with its English or its Chinese caption (a fair coin per sample and epoch), the
text tower is the mean-pooled one (``text_pooling="mean"``), and the held-out recall is
reported per language. The tokenizer goes into the checkpoint.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the conventional name

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tokenizers import Tokenizer

from clipsearch.demo import shapes
from clipsearch.encoder.tokenizer import get_tokenizer
from tiny_clip.model import CLIP_MEAN, CLIP_STD, TinyClip, TinyClipConfig
from tiny_clip.tokenizer import train_tokenizer

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "tiny_clip"


def load_split(n: int, seed: int, lang: str = "en") -> tuple[np.ndarray, list[str]]:
    """``n`` pictures as uint8 [n,224,224,3] plus captions, cached on disk after first use."""
    CACHE.mkdir(parents=True, exist_ok=True)
    pixels_file = CACHE / f"pixels_{seed}_{n}.npy"
    suffix = "" if lang == "en" else f"_{lang}"
    captions_file = CACHE / f"captions{suffix}_{seed}_{n}.txt"
    if pixels_file.exists() and captions_file.exists():
        return np.load(pixels_file, mmap_mode="r"), captions_file.read_text().splitlines()
    started = time.time()
    pixels = np.lib.format.open_memmap(
        CACHE / f"tmp_{seed}_{n}.npy", mode="w+", dtype=np.uint8, shape=(n, 224, 224, 3)
    )
    captions: dict[str, list[str]] = {language: [] for language in shapes.LANGUAGES}
    for index, (image, texts) in enumerate(shapes.iter_multilingual(n, seed)):
        pixels[index] = np.asarray(image)
        for language, text in texts.items():
            captions[language].append(text)
    pixels.flush()
    del pixels
    (CACHE / f"tmp_{seed}_{n}.npy").rename(pixels_file)
    for language, texts in captions.items():
        name = "" if language == "en" else f"_{language}"
        (CACHE / f"captions{name}_{seed}_{n}.txt").write_text("\n".join(texts) + "\n")
    print(f"rendered {n} pictures (seed {seed}) in {time.time() - started:.0f} s", flush=True)
    return np.load(pixels_file, mmap_mode="r"), captions[lang]


def zh_variant(caption: str, rng: np.random.Generator, p: float = 0.3) -> str:
    """With probability ``p``, 红色圆形 -> 红色的圆形: the same meaning with the 的 people type."""
    # Every colour name ends in 色, and 色 is in nothing else.
    return caption.replace("色", "色的") if rng.random() < p else caption


class WordPieceText:
    """Tokenises captions with the bilingual tokenizer, padded to the batch's longest."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        tokenizer.enable_padding(pad_id=tokenizer.token_to_id("[PAD]"), pad_token="[PAD]")

    def __call__(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        encodings = self.tokenizer.encode_batch(captions)
        ids = torch.tensor([e.ids for e in encodings], dtype=torch.int32)
        mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.int32)
        return ids, mask


def to_pixels(batch: np.ndarray) -> torch.Tensor:
    """uint8 [B,H,W,3] -> CLIP-normalised float32 [B,3,H,W]."""
    x = torch.from_numpy(np.array(batch)).permute(0, 3, 1, 2).float().div_(255)
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def tokenize(captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Ids and mask trimmed to the longest caption: exact for a causal, EOT-pooled tower."""
    ids, mask = get_tokenizer().tokenize(captions)
    length = int(mask.sum(axis=1).max())
    return torch.from_numpy(ids[:, :length].copy()), torch.from_numpy(mask[:, :length].copy())


@torch.no_grad()
def embed(
    model: TinyClip, pixels: np.ndarray, captions: list[str], text: object = None
) -> tuple[torch.Tensor, ...]:
    """L2-normalised image and text embeddings of a split, in batches."""
    model.eval()
    images, texts = [], []
    ids, mask = text(captions) if callable(text) else tokenize(captions)
    for start in range(0, len(captions), 128):
        images.append(model.visual(to_pixels(pixels[start : start + 128])))
        texts.append(model.textual(ids[start : start + 128], mask[start : start + 128]))
    model.train()
    return F.normalize(torch.cat(images), dim=-1), F.normalize(torch.cat(texts), dim=-1)


def recall_at(similarity: np.ndarray, ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    """R@k where query i's only correct answer is item i (rows: queries)."""
    correct = similarity[np.arange(len(similarity)), np.arange(len(similarity))]
    rank = (similarity > correct[:, None]).sum(axis=1)
    return {f"R@{k}": float((rank < k).mean()) for k in ks}


def evaluate(
    model: TinyClip, pixels: np.ndarray, captions: list[str], text_fn: object = None
) -> dict[str, float]:
    """Held-out recall both ways: text->image and image->text."""
    image, text = embed(model, pixels, captions, text_fn)
    sim = (text @ image.t()).numpy()
    t2i = {f"t2i_{k}": v for k, v in recall_at(sim).items()}
    i2t = {f"i2t_{k}": v for k, v in recall_at(sim.T).items()}
    return t2i | i2t


def main() -> int:
    """Train, evaluate on the held-out split, save the checkpoint."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=18.0, help="training budget")
    parser.add_argument("--train-n", type=int, default=16000)
    parser.add_argument("--heldout-n", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    # One thread: on a shared 2-core machine, a 2-thread OpenMP step waits at every barrier
    # for a descheduled sibling and ran 7x slower (4.1 vs 0.59 s/step) than one thread.
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=CACHE / "checkpoint.pt")
    parser.add_argument("--bf16", action="store_true", help="autocast matmuls to bfloat16")
    parser.add_argument(
        "--lang", choices=["en", "both"], default="en", help="both: the bilingual model"
    )
    parser.add_argument("--context-length", type=int, default=64, help="bilingual only")
    parser.add_argument(
        "--both-captions",
        action="store_true",
        help="bilingual: every picture with both its captions in each step (else a coin)",
    )
    args = parser.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    train_pixels, train_captions = load_split(args.train_n, shapes.TRAIN_SEED)
    held_pixels, held_captions = load_split(args.heldout_n, shapes.HELDOUT_SEED)
    # Resident copy: the memmap is only for the cache file.
    train_pixels = np.array(train_pixels)
    cfg = TinyClipConfig(vision_width=96, vision_layers=3, vision_heads=3, text_width=96)
    bilingual = args.lang == "both"
    if bilingual:
        train_zh = load_split(args.train_n, shapes.TRAIN_SEED, "zh")[1]
        held_zh = load_split(args.heldout_n, shapes.HELDOUT_SEED, "zh")[1]
        variants = [c.replace("色", "色的") for c in train_zh[:200]]  # 的 variants: vocabulary
        tokenizer = train_tokenizer([*train_captions, *train_zh, *variants])
        text_fn = WordPieceText(tokenizer)
        cfg = TinyClipConfig(
            vision_width=96,
            vision_layers=3,
            vision_heads=3,
            text_width=96,
            context_length=args.context_length,
            text_pooling="mean",
            vocab_size=tokenizer.get_vocab_size(),
        )
        vocabulary: list[int] = []
        print(f"tokenizer: {tokenizer.get_vocab_size()} entries", flush=True)
    else:
        train_ids, train_mask = tokenize(train_captions)
        vocabulary = sorted({int(t) for t in train_ids.flatten().tolist()} - {0})
        text_fn = None
    model = TinyClip(cfg, vocabulary)
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.98),
    )
    params = sum(p.numel() for p in model.parameters())
    print(f"config {cfg.as_dict()} params {params:,} vocabulary {len(vocabulary)}", flush=True)

    rng = np.random.default_rng(0)
    budget = args.minutes * 60
    warmup, total_steps, timing_steps = 100, 10**9, 20
    started = time.time()
    timing_started = (started, 0)
    step = 0
    order = rng.permutation(args.train_n)
    cursor = 0
    while step < total_steps:
        if cursor + args.batch > args.train_n:
            order, cursor = rng.permutation(args.train_n), 0
        index = np.sort(order[cursor : cursor + args.batch])
        cursor += args.batch
        lr = args.lr * min(1.0, (step + 1) / warmup)
        if step >= warmup and total_steps < 10**9:
            progress = (step - warmup) / max(1, total_steps - warmup)
            lr = args.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        for group in optimizer.param_groups:
            group["lr"] = lr
        if bilingual and args.both_captions:
            sets = [
                text_fn([train_captions[i] for i in index]),
                text_fn([zh_variant(train_zh[i], rng) for i in index]),
            ]
        elif bilingual:
            chosen = [
                zh_variant(train_zh[i], rng) if rng.random() < 0.5 else train_captions[i]
                for i in index
            ]
            sets = [text_fn(chosen)]
        else:
            sets = [(train_ids[index], train_mask[index])]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            loss = model.loss_captions(to_pixels(train_pixels[index]), sets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        elapsed = time.time() - started
        if step == timing_steps:
            timing_started = (time.time(), step)
        if step > timing_steps and step % 25 == 0:
            # Re-plan the schedule from the recent pace: the machine's load changes.
            rate = (step - timing_started[1]) / (time.time() - timing_started[0])
            total_steps = max(step + 1, step + int((budget - elapsed) * rate))
            if step % 200 == 0:
                print(f"{1 / rate:.2f} s/step -> {total_steps} steps", flush=True)
        if step % 50 == 0 or step == total_steps:
            scale = model.logit_scale.exp().item()
            print(
                f"step {step}/{total_steps} loss {loss.item():.3f} lr {lr:.2e} "
                f"scale {scale:.1f} {elapsed / 60:.1f} min",
                flush=True,
            )
        if step % 400 == 0:
            quick = evaluate(model, held_pixels[:500], held_captions[:500], text_fn)
            print("held-out[:500]", {k: round(v, 3) for k, v in quick.items()}, flush=True)
            if bilingual:
                quick = evaluate(model, held_pixels[:500], held_zh[:500], text_fn)
                print("held-out zh[:500]", {k: round(v, 3) for k, v in quick.items()}, flush=True)
    minutes = (time.time() - started) / 60
    metrics = evaluate(model, held_pixels, held_captions, text_fn)
    print(f"trained {step} steps ({step * args.batch:,} samples) in {minutes:.1f} min")
    print("held-out", {k: round(v, 3) for k, v in metrics.items()}, flush=True)
    extra: dict[str, object] = {}
    if bilingual:
        metrics_zh = evaluate(model, held_pixels, held_zh, text_fn)
        print("held-out zh", {k: round(v, 3) for k, v in metrics_zh.items()}, flush=True)
        extra = {
            "metrics_zh": metrics_zh,
            "tokenizer": tokenizer.to_str(),
            "both_captions": args.both_captions,
        }
    torch.save(
        {
            **extra,
            "state_dict": model.state_dict(),
            "config": cfg.as_dict(),
            "vocabulary": vocabulary,
            "metrics": metrics,
            "steps": step,
            "minutes": minutes,
        },
        args.out,
    )
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
