"""``clipsearch evaluate`` on the real formats: Flickr ``*.token`` and the Karpathy split
JSON as well as ``captions.csv``, made here from generated shapes pictures. The same set in
each format gives the same figures; several captions per image are grouped as the standard
protocol counts them; a split is chosen; bad files are refused with exit 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import SHAPES_MODEL

from clipsearch.cli import main
from clipsearch.demo import shapes
from clipsearch.evaluation_sets import read_set

N = 16


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One set in three formats: captions.csv, a .token file and a Karpathy JSON."""
    root = tmp_path_factory.mktemp("set")
    rows = shapes.generate(root, N, seed=77)
    names = [path.name for path, _ in rows]
    token = [f"{name}#0\t{caption}" for name, (_, caption) in zip(names, rows, strict=True)]
    (root / "captions.token").write_text("\n".join(token) + "\n")
    images = [
        {
            "filename": name,
            "split": "test" if i < N // 2 else "train",
            "sentences": [{"raw": caption, "tokens": caption.split()}],
        }
        for i, (name, (_, caption)) in enumerate(zip(names, rows, strict=True))
    ]
    (root / "dataset_shapes.json").write_text(json.dumps({"dataset": "shapes", "images": images}))
    return root


def _evaluate(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code = main(["evaluate", *argv, "--model-path", str(SHAPES_MODEL)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "text->image" in out
    assert "image->text" in out
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])["evaluate"]
    return result


@pytest.mark.usefixtures("clean_settings")
def test_the_same_set_in_each_format_gives_the_same_figures(
    labelled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = str(labelled / "images")
    by_csv = _evaluate(capsys, "--captions", str(labelled / "captions.csv"))
    by_token = _evaluate(capsys, "--captions", str(labelled / "captions.token"), "--images", images)
    karpathy = str(labelled / "dataset_shapes.json")
    by_json = _evaluate(capsys, "--captions", karpathy, "--images", images, "--split", "all")
    for result in (by_csv, by_token, by_json):
        assert (result["n_images"], result["n_captions"]) == (N, N)
    for direction in ("text_to_image", "image_to_text"):
        assert by_token[direction] == by_csv[direction]
        assert by_json[direction] == by_csv[direction]
        assert set(by_csv[direction]) == {"R@1", "R@5", "R@10"}
    test_only = _evaluate(capsys, "--captions", karpathy, "--images", images)
    assert test_only["n_images"] == N // 2  # the test split by default


def test_several_captions_per_image_are_grouped(tmp_path: Path) -> None:
    for name in ("a.png", "b.png"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "c.token").write_text(
        "a.png#0\tone\na.png#1\ttwo\nb.png#0\tthree\na.png#2\tfour\nb.png#1\tfive\n"
    )
    data = read_set(tmp_path / "c.token")
    assert [p.name for p in data.images] == ["a.png", "b.png"]
    assert data.captions == ["one", "two", "four", "three", "five"]
    assert data.image_of == [0, 0, 0, 1, 1]  # each caption's target; all of an image's count
    doc = {
        "images": [
            {"filepath": "val", "filename": "a.png", "split": "test",
             "sentences": [{"raw": "one"}, {"raw": " two "}, {"raw": ""}]},
            {"filepath": "val", "filename": "b.png", "split": "val", "sentences": [{"raw": "x"}]},
        ]
    }  # fmt: skip
    (tmp_path / "val").mkdir()
    (tmp_path / "val" / "a.png").write_bytes(b"x")
    (tmp_path / "k.json").write_text(json.dumps(doc))
    karpathy = read_set(tmp_path / "k.json")  # COCO style: filepath/filename
    assert karpathy.captions == ["one", "two"]
    assert karpathy.image_of == [0, 0]
    assert karpathy.images == [(tmp_path / "val" / "a.png").resolve()]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("k.json", '{"images": [{"filename": "a.png", "split": "train"}]}', "no images in split"),
        ("k.json", '{"images": 3}', "Karpathy"),
        ("k.json", "{nope", "not JSON"),
        ("c.token", "a.png#0 no tab here\n", "name#n<TAB>caption"),
        ("c.token", "missing.png#0\ta caption\n", "image not found"),
    ],
)
def test_bad_files_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: str, message: str
) -> None:
    (tmp_path / name).write_text(content)
    assert main(["evaluate", "--captions", str(tmp_path / name)]) == 2
    assert message in capsys.readouterr().err
