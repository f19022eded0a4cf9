"""The ``min_score: "auto"`` threshold: the separating rule on hand-made score matrices,
and ``clipsearch evaluate --store-threshold`` against a real loopback gateway (the shapes
model and a second one): the threshold it prints is the one stored with the collection, a
collection of another model refuses it (409 ``model_mismatch``, exit 1), missing options
are exit 2, and the client's ``auto`` search says ``no_match``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from tests.helpers import SHAPES_MODEL, second_model

from clipsearch.api.app import create_app
from clipsearch.bench.loopback import serve
from clipsearch.cli import main
from clipsearch.client import Client
from clipsearch.core.config import Settings
from clipsearch.demo import shapes
from clipsearch.evaluation import separating_threshold


def test_a_clean_split_gets_the_midpoint() -> None:
    sim = np.array([[0.9, 0.2, 0.1], [0.3, 0.8, 0.4], [0.0, 0.5, 0.7]], dtype=np.float32)
    t = separating_threshold(sim, [0, 1, 2])
    assert t["min_score"] == pytest.approx((0.7 + 0.5) / 2)  # lowest match, highest other
    assert t["balanced_accuracy"] == 1.0
    assert (t["true_positive_rate"], t["true_negative_rate"]) == (1.0, 1.0)


def test_overlap_is_weighed_by_class_not_by_count() -> None:
    # One match (0.4) below one non-match (0.6): calling 0.4 a match costs one of six
    # non-matches (TNR 5/6), leaving it out costs one of three matches (TPR 2/3).
    sim = np.array([[0.9, 0.6, 0.1], [0.3, 0.8, 0.2], [0.0, 0.1, 0.4]], dtype=np.float32)
    t = separating_threshold(sim, [0, 1, 2])
    assert t["min_score"] == pytest.approx((0.3 + 0.4) / 2)
    assert t["balanced_accuracy"] == pytest.approx((1 + 5 / 6) / 2)
    # Several captions of one image: both are matches of it.
    two = separating_threshold(np.array([[0.9, 0.1], [0.8, 0.2]], np.float32), [0, 0])
    assert two["min_score"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="non-matching"):
        separating_threshold(np.array([[0.9]], np.float32), [0])


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("auto-threshold")
    settings = Settings(
        _env_file=None,
        data_dir=tmp,
        model_path=SHAPES_MODEL,
        milvus_uri=str(tmp / "milvus.db"),
        extra_models=[str(second_model(tmp / "shapes-v2"))],
    )
    with serve(create_app(settings), name="threshold-gateway") as base:
        yield base


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("set")
    shapes.generate(root, 24, seed=77)
    return root / "captions.csv"


@pytest.mark.usefixtures("clean_settings")
def test_evaluate_stores_the_threshold(
    url: str, labelled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Client(url) as gw:
        gw.create_collection("thr")
        gw.create_collection("thr_v2", model="shapes-tiny-v2")
    argv = ["evaluate", "--captions", str(labelled), "--model-path", str(SHAPES_MODEL)]
    code = main([*argv, "--store-threshold", "--collection", "thr", "--url", url])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert 'min_score "auto" threshold' in out
    result = json.loads(out.strip().splitlines()[-1])["evaluate"]
    value = result["threshold"]["min_score"]
    assert result["stored"] == {"collection": "thr", "min_score_auto": pytest.approx(value)}
    with Client(url, collection="thr") as gw:
        assert gw.collection_info("thr")["min_score_auto"] == pytest.approx(value)
        answer = gw.search_text("zzzz qqqq", min_score="auto")
        assert answer["hits"] == []  # an empty collection: nothing clears it
        assert answer["no_match"] is True
    # Another model's collection: the threshold is not valid there.
    code = main([*argv, "--store-threshold", "--collection", "thr_v2", "--url", url])
    _, err = capsys.readouterr()
    assert code == 1
    assert "409 model_mismatch" in err
    with Client(url) as gw:
        assert gw.collection_info("thr_v2")["min_score_auto"] is None
    assert main([*argv, "--store-threshold", "--collection", "thr"]) == 2  # no --url
    assert "needs --url and --collection" in capsys.readouterr().err
