"""Deterministic captioned pictures of simple shapes: the data set of the tiny ``shapes`` CLIP.

Every picture is 224x224 and shows one shape ("a small red circle on the left") or two
shapes in a spatial relation ("a blue square above a yellow star") on a dark or neutral
background. The background colour and small jitters of position, size, colour and rotation
are deliberately *not* described, so that a model learns to ignore them.

A picture is the rendering of a :class:`Scene`; the caption is a function of the scene
(plus the choice of phrasing for two shapes), and two different scenes never share a
caption. Evaluation retrieves the exact picture for each caption, so :func:`generate`
draws distinct scenes within one call for as long as the scene space allows.

Splits are made by seed: :data:`TRAIN_SEED` for training, :data:`HELDOUT_SEED` for the
held-out evaluation set. The same ``(n, seed)`` gives byte-identical files on every run.

Run ``python -m clipsearch.demo.shapes --out DIR --n N --seed S`` to write ``DIR/images/*.png``
and ``DIR/captions.csv`` (header ``image_path,caption``; paths relative to ``DIR``).

Captions come in English (the default, unchanged since the first model) and in Chinese
(:func:`caption_zh_for`, natural Chinese word order: 左边一个小的红色圆形,
一个蓝色正方形在一个橙色星形的下面). The Chinese caption is a pure function of the same scene
and phrasing choice, so asking for it draws nothing more from the generator: the pictures and
the English captions of every ``(n, seed)`` stay byte-identical. ``--lang zh`` writes Chinese
captions, ``--lang both`` writes each picture twice in the CSV (one row per language, the
same ``image_path``); both add a ``lang`` column, which the default ``--lang en`` omits.
"""

from __future__ import annotations

import argparse
import csv
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SIZE = 224
TRAIN_SEED = 0
HELDOUT_SEED = 1

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "diamond")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (40, 90, 230),
    "yellow": (240, 220, 40),
    "orange": (245, 140, 20),
    "purple": (150, 60, 200),
    "white": (245, 245, 245),
}
# Dark or neutral tones, far enough from every shape colour to keep shapes visible.
BACKGROUNDS: tuple[tuple[int, int, int], ...] = (
    (25, 25, 25),
    (75, 75, 75),
    (120, 120, 120),
    (30, 40, 70),
    (70, 45, 35),
    (35, 60, 45),
)
SIZES: tuple[str, ...] = ("small", "big")
POSITIONS: dict[str, tuple[float, float]] = {
    "left": (56.0, 112.0),
    "right": (168.0, 112.0),
    "top": (112.0, 56.0),
    "bottom": (112.0, 168.0),
    "centre": (112.0, 112.0),
}
POSITION_PHRASES: dict[str, str] = {
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
    "centre": "in the centre",
}
# Chinese words for the same vocabulary (colour names with 色, the usual form in captions).
COLOURS_ZH: dict[str, str] = {
    "red": "红色",
    "green": "绿色",
    "blue": "蓝色",
    "yellow": "黄色",
    "orange": "橙色",
    "purple": "紫色",
    "white": "白色",
}
SHAPES_ZH: dict[str, str] = {
    "circle": "圆形",
    "square": "正方形",
    "triangle": "三角形",
    "star": "星形",
    "cross": "十字形",
    "diamond": "菱形",
}
SIZES_ZH: dict[str, str] = {"small": "小的", "big": "大的"}
# Chinese puts the place first: 左边一个小的红色圆形 ("on the left, a small red circle").
POSITIONS_ZH: dict[str, str] = {
    "left": "左边",
    "right": "右边",
    "top": "上面",
    "bottom": "下面",
    "centre": "中间",
}
LANGUAGES: tuple[str, ...] = ("en", "zh")
# Radius ranges (of the shape's bounding circle) in pixels.
_RADIUS = {"small": (18.0, 24.0), "big": (44.0, 52.0), "pair": (28.0, 34.0)}
_SINGLE_PROBABILITY = 0.3
# Redraws allowed when a scene was already used in this call; beyond it, repeats are accepted.
_UNIQUE_TRIES = 30


@dataclass(frozen=True)
class Scene:
    """What a picture shows, i.e. everything its caption says.

    One shape: ``size`` and ``position`` are set and ``second`` is ``None``. Two shapes:
    ``axis`` is ``"vertical"`` (``first`` above ``second``) or ``"horizontal"`` (``first``
    left of ``second``).
    """

    first: tuple[str, str]  # (colour, shape)
    second: tuple[str, str] | None = None
    size: str = ""
    position: str = ""
    axis: str = ""


def _article(phrase: str) -> str:
    return "an" if phrase[0] in "aeiou" else "a"


def caption_for(scene: Scene, mirrored: bool = False) -> str:
    """The English caption of ``scene``; ``mirrored`` names a pair from its second shape."""
    colour, shape = scene.first
    if scene.second is None:
        where = POSITION_PHRASES[scene.position]
        return f"{_article(scene.size)} {scene.size} {colour} {shape} {where}"
    other_colour, other_shape = scene.second
    if scene.axis == "vertical":
        relation = "below" if mirrored else "above"
    else:
        relation = "to the right of" if mirrored else "to the left of"
    a, b = (f"{other_colour} {other_shape}", f"{colour} {shape}")
    if not mirrored:
        a, b = b, a
    return f"{_article(a)} {a} {relation} {_article(b)} {b}"


def caption_zh_for(scene: Scene, mirrored: bool = False) -> str:
    """The Chinese caption of ``scene``, with the same ``mirrored`` choice as the English one.

    One shape: place, 一个, size, colour, shape (左边一个小的红色圆形). Two shapes: "一个 A 在一个
    B 的 上面/下面/左边/右边", where A is the shape named first in the English caption too.
    """
    colour, shape = scene.first
    if scene.second is None:
        where = POSITIONS_ZH[scene.position]
        return f"{where}一个{SIZES_ZH[scene.size]}{COLOURS_ZH[colour]}{SHAPES_ZH[shape]}"
    other_colour, other_shape = scene.second
    if scene.axis == "vertical":
        relation = "下面" if mirrored else "上面"
    else:
        relation = "右边" if mirrored else "左边"
    a = f"{COLOURS_ZH[colour]}{SHAPES_ZH[shape]}"
    b = f"{COLOURS_ZH[other_colour]}{SHAPES_ZH[other_shape]}"
    if mirrored:
        a, b = b, a
    return f"一个{a}在一个{b}的{relation}"


def _sample_scene(rng: np.random.Generator) -> Scene:
    colours = list(COLOURS)

    def pick() -> tuple[str, str]:
        return (colours[int(rng.integers(len(colours)))], SHAPES[int(rng.integers(len(SHAPES)))])

    if rng.random() < _SINGLE_PROBABILITY:
        return Scene(
            first=pick(),
            size=SIZES[int(rng.integers(len(SIZES)))],
            position=list(POSITIONS)[int(rng.integers(len(POSITIONS)))],
        )
    first = pick()
    second = pick()
    while second == first:  # "a red star above a red star" reads oddly; keep the pair distinct.
        second = pick()
    return Scene(
        first=first, second=second, axis="vertical" if rng.random() < 0.5 else "horizontal"
    )


def _polygon(
    cx: float, cy: float, radii: Sequence[float], angle: float
) -> list[tuple[float, float]]:
    """Vertices at alternating ``radii`` evenly spread around the centre, starting at ``angle``."""
    n = len(radii)
    return [
        (
            cx + radii[k] * math.cos(angle + 2 * math.pi * k / n),
            cy + radii[k] * math.sin(angle + 2 * math.pi * k / n),
        )
        for k in range(n)
    ]


def _draw_shape(
    draw: ImageDraw.ImageDraw,
    shape: str,
    cx: float,
    cy: float,
    r: float,
    colour: tuple[int, int, int],
    tilt: float,
) -> None:
    up = -math.pi / 2 + tilt
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif shape == "square":
        draw.polygon(_polygon(cx, cy, [r * 1.1] * 4, math.pi / 4 + tilt), fill=colour)
    elif shape == "diamond":
        # Taller than wide, so that it never looks like a slightly turned square.
        pts = [(cx, cy - r * 1.15), (cx + r * 0.75, cy), (cx, cy + r * 1.15), (cx - r * 0.75, cy)]
        draw.polygon(pts, fill=colour)
    elif shape == "triangle":
        draw.polygon(_polygon(cx, cy + r * 0.15, [r * 1.15] * 3, up), fill=colour)
    elif shape == "star":
        draw.polygon(_polygon(cx, cy + r * 0.1, [r * 1.15, r * 0.47] * 5, up), fill=colour)
    elif shape == "cross":
        w = r * 0.34
        draw.rectangle((cx - r, cy - w, cx + r, cy + w), fill=colour)
        draw.rectangle((cx - w, cy - r, cx + w, cy + r), fill=colour)
    else:
        raise ValueError(f"unknown shape {shape!r}")


def _jitter_colour(
    rng: np.random.Generator, rgb: tuple[int, int, int], amount: int
) -> tuple[int, int, int]:
    values = np.clip(np.array(rgb) + rng.integers(-amount, amount + 1, size=3), 0, 255)
    return (int(values[0]), int(values[1]), int(values[2]))


def render(scene: Scene, rng: np.random.Generator) -> Image.Image:
    """Draw ``scene`` as a 224x224 RGB picture; ``rng`` supplies the undescribed jitter."""
    background = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), _jitter_colour(rng, background, 8))
    draw = ImageDraw.Draw(image)

    def radius(kind: str) -> float:
        low, high = _RADIUS[kind]
        return float(rng.uniform(low, high))

    def tilt() -> float:
        return float(rng.uniform(-0.15, 0.15))

    if scene.second is None:
        x, y = POSITIONS[scene.position]
        x += float(rng.uniform(-10, 10))
        y += float(rng.uniform(-10, 10))
        colour, shape = scene.first
        _draw_shape(
            draw, shape, x, y, radius(scene.size), _jitter_colour(rng, COLOURS[colour], 15), tilt()
        )
        return image
    # The pair sits along one axis, each shape in its half with free play across the axis.
    near, far = float(rng.uniform(50, 68)), float(rng.uniform(156, 174))
    cross_a, cross_b = float(rng.uniform(80, 144)), float(rng.uniform(80, 144))
    if scene.axis == "vertical":
        centres = [(cross_a, near), (cross_b, far)]
    else:
        centres = [(near, cross_a), (far, cross_b)]
    for (colour, shape), (x, y) in zip((scene.first, scene.second), centres, strict=True):
        _draw_shape(
            draw, shape, x, y, radius("pair"), _jitter_colour(rng, COLOURS[colour], 15), tilt()
        )
    return image


def iter_samples(n: int, seed: int, unique: bool = True) -> Iterator[tuple[Image.Image, str]]:
    """Yield ``n`` ``(picture, caption)`` pairs, deterministic in ``(n, seed)``.

    With ``unique`` (the default) scenes do not repeat within the call while the scene space
    (about 7,500 scenes) has room: distinct pictures then have distinct captions.
    """
    for image, captions in iter_multilingual(n, seed, unique):
        yield image, captions["en"]


def iter_multilingual(
    n: int, seed: int, unique: bool = True
) -> Iterator[tuple[Image.Image, dict[str, str]]]:
    """As :func:`iter_samples`, with the caption in every language of :data:`LANGUAGES`.

    The random draws are exactly those of the English-only generator: same pictures, same
    English captions.
    """
    rng = np.random.default_rng(seed)
    seen: set[Scene] = set()
    for _ in range(n):
        scene = _sample_scene(rng)
        tries = 0
        while unique and scene in seen and tries < _UNIQUE_TRIES:
            scene = _sample_scene(rng)
            tries += 1
        seen.add(scene)
        mirrored = scene.second is not None and bool(rng.random() < 0.5)
        image = render(scene, rng)
        yield image, {"en": caption_for(scene, mirrored), "zh": caption_zh_for(scene, mirrored)}


def generate(
    out_dir: Path, n: int, seed: int, unique: bool = True, lang: str = "en"
) -> list[tuple[Path, str]]:
    """Write ``n`` PNG pictures to ``out_dir/images`` and ``out_dir/captions.csv``.

    Returns ``(absolute picture path, caption)`` pairs in CSV order. The CSV's
    ``image_path`` column is relative to ``out_dir``. ``lang`` is ``"en"`` (the original
    two-column CSV), ``"zh"`` or ``"both"`` (a third ``lang`` column; with ``both`` every
    picture has one row per language, English first).
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    if lang not in (*LANGUAGES, "both"):
        raise ValueError(f"lang must be one of en, zh, both (got {lang!r})")
    languages = list(LANGUAGES) if lang == "both" else [lang]
    with_lang = lang != "en"
    images_dir = out_dir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[Path, str]] = []
    width = max(5, len(str(n - 1)))
    with (out_dir / "captions.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(
            ["image_path", "caption", "lang"] if with_lang else ["image_path", "caption"]
        )
        for index, (image, captions) in enumerate(iter_multilingual(n, seed, unique)):
            relative = f"images/{index:0{width}d}.png"
            path = out_dir / relative
            # Pillow's PNG writer adds no timestamps, so reruns are byte-identical.
            image.save(path, format="PNG", optimize=False)
            for language in languages:
                caption = captions[language]
                writer.writerow([relative, caption, language] if with_lang else [relative, caption])
                rows.append((path.resolve(), caption))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: ``python -m clipsearch.demo.shapes --out DIR --n N --seed S``."""
    parser = argparse.ArgumentParser(description="Write captioned pictures of shapes.")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--n", type=int, default=1000, help="number of pictures")
    parser.add_argument(
        "--seed",
        type=int,
        default=HELDOUT_SEED,
        help=f"split seed ({TRAIN_SEED} = train, {HELDOUT_SEED} = held-out)",
    )
    parser.add_argument(
        "--allow-repeats", action="store_true", help="do not try to keep scenes distinct"
    )
    parser.add_argument(
        "--lang",
        choices=[*LANGUAGES, "both"],
        default="en",
        help="caption language; zh and both add a lang column to captions.csv",
    )
    args = parser.parse_args(argv)
    rows = generate(args.out, args.n, args.seed, unique=not args.allow_repeats, lang=args.lang)
    print(f"wrote {args.n} pictures, {len(rows)} captions, {args.out / 'captions.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
