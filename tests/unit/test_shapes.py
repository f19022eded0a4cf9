"""The shapes generator: determinism, caption and CSV format, split disjointness."""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clipsearch.demo import shapes

_CAPTION_RE = re.compile(
    r"^(an? (small|big) \w+ \w+ (on the left|on the right|at the top|at the bottom|in the centre)"
    r"|an? \w+ \w+ (above|below|to the left of|to the right of) an? \w+ \w+)$"
)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    first = shapes.generate(tmp_path / "a", 12, seed=5)
    second = shapes.generate(tmp_path / "b", 12, seed=5)
    assert [c for _, c in first] == [c for _, c in second]
    assert [_digest(p) for p, _ in first] == [_digest(p) for p, _ in second]
    assert (tmp_path / "a/captions.csv").read_bytes() == (tmp_path / "b/captions.csv").read_bytes()


def test_csv_format_and_pictures(tmp_path: Path) -> None:
    rows = shapes.generate(tmp_path, 30, seed=shapes.HELDOUT_SEED)
    with (tmp_path / "captions.csv").open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        assert next(reader) == ["image_path", "caption"]
        records = list(reader)
    assert len(records) == len(rows) == 30
    for (relative, caption), (path, returned_caption) in zip(records, rows, strict=True):
        assert not Path(relative).is_absolute()
        assert (tmp_path / relative).resolve() == path
        assert caption == returned_caption
        assert _CAPTION_RE.match(caption), caption
        with Image.open(tmp_path / relative) as image:
            assert image.size == (224, 224)
            assert image.mode == "RGB"


def test_captions_use_only_the_vocabulary() -> None:
    words = {"a", "an", "on", "the", "at", "in", "above", "below", "to", "of"}
    words |= set(shapes.SHAPES) | set(shapes.COLOURS) | set(shapes.SIZES)
    words |= {w for phrase in shapes.POSITION_PHRASES.values() for w in phrase.split()}
    for _, caption in shapes.iter_samples(200, seed=3):
        assert set(caption.split()) <= words, caption
        # "an" before vowels only, so the tokenizer sees natural English.
        for article, noun in zip(caption.split(), caption.split()[1:], strict=False):
            if article in {"a", "an"}:
                assert (article == "an") == (noun[0] in "aeiou"), caption


def test_both_kinds_of_scene_and_all_relations_occur() -> None:
    captions = [c for _, c in shapes.iter_samples(400, seed=shapes.TRAIN_SEED)]
    for phrase in ("above", "below", "to the left of", "to the right of", "small", "big"):
        assert any(phrase in c for c in captions), phrase
    for shape in shapes.SHAPES:
        assert any(shape in c for c in captions), shape


def test_held_out_captions_are_distinct() -> None:
    captions = [c for _, c in shapes.iter_samples(1000, seed=shapes.HELDOUT_SEED)]
    assert len(set(captions)) == len(captions)


def test_shape_is_drawn_where_the_caption_says() -> None:
    scene = shapes.Scene(first=("red", "circle"), size="big", position="left")
    image = np.asarray(shapes.render(scene, np.random.default_rng(0))).astype(int)
    red = (image[..., 0] > 180) & (image[..., 1] < 90) & (image[..., 2] < 90)
    columns = np.nonzero(red.any(axis=0))[0]
    assert red.sum() > 3000
    assert columns.max() < 112  # entirely in the left half


def test_mirrored_caption_names_the_same_pair() -> None:
    scene = shapes.Scene(first=("blue", "square"), second=("yellow", "star"), axis="vertical")
    assert shapes.caption_for(scene) == "a blue square above a yellow star"
    assert shapes.caption_for(scene, mirrored=True) == "a yellow star below a blue square"
    scene = shapes.Scene(first=("orange", "cross"), second=("red", "circle"), axis="horizontal")
    assert shapes.caption_for(scene) == "an orange cross to the left of a red circle"


def test_train_and_held_out_splits_are_disjoint() -> None:
    def hashes(seed: int) -> set[str]:
        return {
            hashlib.sha256(image.tobytes()).hexdigest()
            for image, _ in shapes.iter_samples(300, seed=seed)
        }

    train, held_out = hashes(shapes.TRAIN_SEED), hashes(shapes.HELDOUT_SEED)
    assert len(train) == 300
    assert len(held_out) == 300
    assert not train & held_out


def test_cli_writes_the_folder(tmp_path: Path) -> None:
    assert shapes.main(["--out", str(tmp_path), "--n", "3", "--seed", "7"]) == 0
    assert len(list((tmp_path / "images").glob("*.png"))) == 3
    assert (tmp_path / "captions.csv").read_text().count("\n") == 4


def test_negative_count_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="n must be"):
        shapes.generate(tmp_path, -1, seed=0)
