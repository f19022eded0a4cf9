"""Chinese captions of the shapes generator: word order, determinism, CSV format, and the
English output unchanged (the committed ``shapes`` model and the tests depend on it)."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest

from clipsearch.demo import shapes

# sha256 of "\n".join(English captions), computed with the generator before Chinese existed.
ENGLISH_DIGESTS = {
    (1000, shapes.HELDOUT_SEED): "9f36225080cc0a10576f7b10ce6ef2d7fa9ec797a5198e33173079120beb2d53",
    (2000, shapes.TRAIN_SEED): "198e8f16f8dcac7d16d3cf737574dd0639b65b018e835bdd8aac5189127e11c4",
}


@pytest.mark.parametrize(("n", "seed"), list(ENGLISH_DIGESTS))
def test_english_captions_are_those_of_the_first_generator(n: int, seed: int) -> None:
    joined = "\n".join(c for _, c in shapes.iter_samples(n, seed))
    assert hashlib.sha256(joined.encode()).hexdigest() == ENGLISH_DIGESTS[(n, seed)]
    both = [texts["en"] for _, texts in shapes.iter_multilingual(n, seed)]
    assert "\n".join(both) == joined


def test_chinese_word_order() -> None:
    single = shapes.Scene(first=("red", "circle"), size="small", position="left")
    assert shapes.caption_zh_for(single) == "左边一个小的红色圆形"
    pair = shapes.Scene(first=("orange", "star"), second=("blue", "square"), axis="vertical")
    assert shapes.caption_for(pair, mirrored=True) == "a blue square below an orange star"
    assert shapes.caption_zh_for(pair, mirrored=True) == "一个蓝色正方形在一个橙色星形的下面"
    assert shapes.caption_zh_for(pair) == "一个橙色星形在一个蓝色正方形的上面"
    side = shapes.Scene(first=("white", "cross"), second=("green", "diamond"), axis="horizontal")
    assert shapes.caption_zh_for(side) == "一个白色十字形在一个绿色菱形的左边"
    assert shapes.caption_zh_for(side, mirrored=True) == "一个绿色菱形在一个白色十字形的右边"


def test_chinese_captions_are_distinct_where_english_ones_are() -> None:
    samples = [texts for _, texts in shapes.iter_multilingual(1000, shapes.HELDOUT_SEED)]
    assert len({t["zh"] for t in samples}) == len({t["en"] for t in samples})


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_csv_lang_column_only_when_asked(tmp_path: Path) -> None:
    shapes.generate(tmp_path / "en", 4, shapes.HELDOUT_SEED)
    shapes.generate(tmp_path / "zh", 4, shapes.HELDOUT_SEED, lang="zh")
    shapes.generate(tmp_path / "both", 4, shapes.HELDOUT_SEED, lang="both")
    en, zh, both = (_rows(tmp_path / x / "captions.csv") for x in ("en", "zh", "both"))
    assert en[0] == ["image_path", "caption"]
    assert zh[0] == both[0] == ["image_path", "caption", "lang"]
    assert [r[2] for r in zh[1:]] == ["zh"] * 4
    assert both[1:] == [x for e, z in zip(en[1:], zh[1:], strict=True) for x in ([*e, "en"], z)]
    for name in ("00000.png", "00003.png"):  # the same pictures whatever the language
        assert (tmp_path / "en/images" / name).read_bytes() == (
            tmp_path / "both/images" / name
        ).read_bytes()
    with pytest.raises(ValueError, match="lang"):
        shapes.generate(tmp_path / "bad", 1, 1, lang="fr")


def test_cli_lang_option(tmp_path: Path) -> None:
    assert shapes.main(["--out", str(tmp_path), "--n", "2", "--lang", "both"]) == 0
    assert len(_rows(tmp_path / "captions.csv")) == 5
