"""``clipsearch evaluate`` on a captions CSV with a ``lang`` column: one table per language."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from clipsearch.cli import main
from clipsearch.demo.shapes import HELDOUT_SEED, generate
from clipsearch.evaluation import read_captions, recalls_by_lang
from tests.helpers import SHAPES_MODEL


def test_recalls_by_lang_on_a_constructed_case() -> None:
    images = np.eye(2, dtype=np.float32)
    # English captions point at their images; the Chinese ones both at image 0.
    texts = np.array([[1, 0], [0, 1], [1, 0], [1, 0]], dtype=np.float32)
    out = recalls_by_lang(texts, images, [0, 1, 0, 1], ["en", "en", "zh", "zh"], ks=(1,))
    assert out["en"]["text_to_image"] == {"R@1": 1.0}
    assert out["zh"]["text_to_image"] == {"R@1": 0.5}
    # Image 1 against the Chinese captions only: both score 0, a tie in its favour.
    assert out["zh"]["image_to_text"] == {"R@1": 1.0}
    assert out["zh"]["n_captions"] == 2


def test_read_captions_keeps_the_lang_column(tmp_path: Path) -> None:
    generate(tmp_path, 3, HELDOUT_SEED, lang="both")
    data = read_captions(tmp_path / "captions.csv")
    assert len(data.images) == 3
    assert data.langs == ["en", "zh"] * 3
    assert data.image_of == [0, 0, 1, 1, 2, 2]
    plain = tmp_path / "plain"
    generate(plain, 3, HELDOUT_SEED)
    assert read_captions(plain / "captions.csv").langs is None


@pytest.mark.usefixtures("clean_settings")
def test_the_english_only_model_is_at_chance_on_chinese(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    generate(tmp_path, 200, HELDOUT_SEED, lang="both")
    argv = ["evaluate", "--captions", str(tmp_path / "captions.csv")]
    assert main([*argv, "--model-path", str(SHAPES_MODEL)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "lang en: 200 captions" in lines
    assert "lang zh: 200 captions" in lines
    result = json.loads(lines[-1])["evaluate"]
    en, zh = result["by_lang"]["en"], result["by_lang"]["zh"]
    assert en["text_to_image"]["R@10"] >= 0.8
    # Chance is 10 / 200 = 0.05: Chinese captions are out of the CLIP BPE model's vocabulary.
    assert zh["text_to_image"]["R@10"] <= 0.2
