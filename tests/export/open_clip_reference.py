"""open_clip's own forward pass, for the export test; runs in the export venv (torch).

    .venv-export/bin/python tests/export/open_clip_reference.py --model ViT-B-32 --seed 0 \\
        --texts texts.json --out reference.npz

Rebuilds the randomly initialised model exactly as ``export_open_clip.py --random-init``
documents it (``torch.manual_seed(seed)`` then ``open_clip.create_model``), written here
independently of the exporter so that a mistake in the exporter's model building shows up
as a mismatch. Writes ``text_ids`` (open_clip's tokenizer, int64 [N, 77]), ``text_features``,
``pixels`` (synthetic pictures through open_clip's eval transform) and ``image_features``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import open_clip
import torch
from PIL import Image, ImageDraw


def pictures() -> list[Image.Image]:
    """A few deterministic pictures of different sizes, aspect ratios and content."""
    rng = np.random.default_rng(7)
    noise = Image.fromarray(rng.integers(0, 256, (300, 260, 3), dtype=np.uint8), "RGB")
    ramp = np.linspace(0, 255, 640, dtype=np.uint8)
    gradient = Image.fromarray(np.stack([np.tile(ramp, (480, 1))] * 3, axis=-1), "RGB")
    shapes = Image.new("RGB", (224, 224), (30, 90, 200))
    draw = ImageDraw.Draw(shapes)
    draw.ellipse((20, 20, 110, 110), fill=(220, 40, 40))
    draw.rectangle((120, 130, 200, 210), fill=(250, 220, 30))
    tall = Image.new("RGB", (120, 400), (10, 200, 60))
    ImageDraw.Draw(tall).polygon([(60, 20), (110, 380), (10, 380)], fill=(255, 255, 255))
    return [noise, gradient, shapes, tall]


def main() -> None:
    """Write the reference arrays (see the module docstring)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--texts", type=Path, required=True, help="JSON list of strings")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    model = open_clip.create_model(args.model, pretrained=None).float().eval()
    size = open_clip.get_model_preprocess_cfg(model)["size"]
    transform = open_clip.image_transform(size, is_train=False)

    texts = json.loads(args.texts.read_text(encoding="utf-8"))
    ids = open_clip.tokenize(texts)
    pixels = torch.stack([transform(img) for img in pictures()])
    with torch.no_grad():
        text_features = model.encode_text(ids)
        image_features = model.encode_image(pixels)
    np.savez(
        args.out,
        text_ids=ids.numpy(),
        text_features=text_features.numpy(),
        pixels=pixels.numpy(),
        image_features=image_features.numpy(),
    )


if __name__ == "__main__":
    main()
