"""Recall maths on constructed cases, captions parsing, and ``clipsearch evaluate`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from clipsearch.cli import main
from clipsearch.evaluation import first_hit_ranks, read_captions, recall_at, recalls
from tests.encoder.conftest import png_bytes
from tests.helpers import SHAPES_MODEL


def unit(v: list[float]) -> np.ndarray:
    a = np.asarray(v, dtype=np.float32)
    return a / np.linalg.norm(a)


def test_recalls_on_a_constructed_case() -> None:
    images = np.eye(3, dtype=np.float32)
    # Caption 1 belongs to image 1 but points mostly at image 0: rank 1 (R@1 miss).
    texts = np.stack([unit([1, 0, 0]), unit([0.9, 0.1, 0]), unit([0, 0, 1])])
    out = recalls(texts, images, image_of=[0, 1, 2], ks=(1, 2))
    assert out["text_to_image"] == {"R@1": pytest.approx(2 / 3), "R@2": 1.0}
    # Image 1's only caption is still the best caption for it (0.11 vs 0 and 0).
    assert out["image_to_text"] == {"R@1": 1.0, "R@2": 1.0}


def test_ranks_and_cutoffs_beyond_five() -> None:
    sim = np.linspace(1.0, 0.0, 12, dtype=np.float32)[None, :].repeat(3, axis=0)
    ranks = first_hit_ranks(sim, [[0], [6], [11, 7]])  # the best relevant one counts
    assert ranks.tolist() == [0, 6, 7]
    assert recall_at(ranks) == {
        "R@1": pytest.approx(1 / 3),
        "R@5": pytest.approx(1 / 3),
        "R@10": 1.0,
    }


def test_ties_count_in_the_querys_favour() -> None:
    sim = np.array([[0.5, 0.5, 0.5]], dtype=np.float32)
    assert first_hit_ranks(sim, [[2]]).tolist() == [0]


@pytest.fixture
def caption_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "split"
    (folder / "img").mkdir(parents=True)
    rows = ["image_path,caption"]
    for i in range(4):
        (folder / "img" / f"{i}.png").write_bytes(png_bytes(i))
        rows.append(f"img/{i}.png,picture number {i}")
    rows.append('img/0.png,"another caption, with a comma"')
    (folder / "captions.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_read_captions_groups_images(caption_dir: Path, tmp_path: Path) -> None:
    data = read_captions(caption_dir / "captions.csv")
    assert len(data.images) == 4
    assert data.image_of == [0, 1, 2, 3, 0]
    assert data.captions[-1] == "another caption, with a comma"
    # --images: paths relative to another folder.
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    (caption_dir / "img").rename(moved / "img")
    with pytest.raises(ValueError, match="image not found"):
        read_captions(caption_dir / "captions.csv")
    assert len(read_captions(caption_dir / "captions.csv", moved).images) == 4


def test_read_captions_rejects_a_bad_header(tmp_path: Path) -> None:
    bad = tmp_path / "c.csv"
    bad.write_text("path,text\na.png,x\n")
    with pytest.raises(ValueError, match="header"):
        read_captions(bad)


@pytest.mark.usefixtures("clean_settings")
def test_evaluate_command_end_to_end(
    caption_dir: Path, dynamic_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "evaluate",
            "--captions",
            str(caption_dir / "captions.csv"),
            "--model-path",
            str(dynamic_model),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "text->image" in out
    result = json.loads(out.strip().splitlines()[-1])["evaluate"]
    assert (result["n_images"], result["n_captions"], result["mode"]) == (4, 5, "local")
    for direction in ("text_to_image", "image_to_text"):
        r = result[direction]
        assert 0.0 <= r["R@1"] <= r["R@5"] <= r["R@10"]
        assert r["R@10"] == 1.0  # 4 images, 5 captions: everything is within the top 10
        assert r["R@5"] == 1.0


@pytest.mark.usefixtures("clean_settings")
def test_shapes_model_meets_the_held_out_bar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The bundled model's quality bar on the full held-out split: t2i R@5 >= 0.5."""
    from clipsearch.demo.shapes import HELDOUT_SEED, generate

    generate(tmp_path / "heldout", 1000, HELDOUT_SEED)
    argv = ["evaluate", "--captions", str(tmp_path / "heldout" / "captions.csv")]
    assert main([*argv, "--model-path", str(SHAPES_MODEL)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["evaluate"]
    assert result["model"] == "shapes-tiny"
    assert result["n_images"] == 1000
    assert result["text_to_image"]["R@5"] >= 0.5
    assert result["image_to_text"]["R@5"] >= 0.5
