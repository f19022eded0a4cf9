"""``clipsearch evaluate --url``: through a real gateway (uvicorn on loopback, tiny ``shapes``
model, Milvus Lite, FLAT index) the figures equal the direct mode's on the same pictures."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from clipsearch.api.app import create_app
from clipsearch.cli import main
from clipsearch.client import GatewayError
from clipsearch.core.config import Settings
from clipsearch.demo.shapes import HELDOUT_SEED, generate
from clipsearch.evaluation_http import batched
from tests.helpers import SHAPES_MODEL, free_port


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A gateway on a free loopback port. Its limits are below the client's first request
    sizes (32 files, 64 queries) so that the client has to shrink its batches."""
    import uvicorn

    settings = Settings(
        _env_file=None,
        data_dir=tmp_path_factory.mktemp("gateway"),
        model_path=SHAPES_MODEL,
        index_type="FLAT",  # exact search: the figures must equal the direct mode's
        max_batch_queries=16,
        max_files_per_request=8,
        max_top_k=50,
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True, name="evaluate-gateway")
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        assert thread.is_alive(), "gateway did not start"
        assert time.monotonic() < deadline, "gateway did not start in time"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


def evaluate(capsys: pytest.CaptureFixture[str], csv: Path, *extra: str) -> dict[str, Any]:
    assert main(["evaluate", "--captions", str(csv), *extra]) == 0
    out = capsys.readouterr().out
    assert "text->image" in out
    assert "image->text" in out
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])["evaluate"]
    return result


def figures(result: dict[str, Any]) -> tuple[Any, ...]:
    return (result["text_to_image"], result["image_to_text"], result["n_images"])


def counts(url: str, collection: str) -> dict[str, int]:
    stats = httpx.get(f"{url}/v1/stats").json()
    return dict(stats["collections"][collection]["counts"])


@pytest.mark.usefixtures("clean_settings")
def test_url_figures_equal_the_direct_figures(
    gateway_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    generate(tmp_path / "set", 100, HELDOUT_SEED)
    csv = tmp_path / "set" / "captions.csv"
    direct = evaluate(capsys, csv, "--model-path", str(SHAPES_MODEL))
    # Not all ones, so that equality below compares something that could differ.
    assert direct["text_to_image"]["R@1"] < 1.0
    assert direct["image_to_text"]["R@1"] < 1.0

    via = evaluate(capsys, csv, "--url", gateway_url, "--collection", "heldout")
    assert figures(via) == figures(direct)
    assert (via["model"], via["fingerprint"]) == (direct["model"], direct["fingerprint"])
    assert via["collection"] == "heldout"
    assert counts(gateway_url, "heldout") == {"images": 100, "texts": 100}

    # A re-run finds everything stored: nothing is added and the figures do not move.
    again = evaluate(capsys, csv, "--url", gateway_url, "--collection", "heldout")
    assert figures(again) == figures(direct)
    assert counts(gateway_url, "heldout") == {"images": 100, "texts": 100}


@pytest.mark.usefixtures("clean_settings")
def test_url_counts_repeated_files_and_captions_like_the_direct_mode(
    gateway_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second caption for a picture (stored as a text), one caption for two pictures,
    and two paths with the same bytes (one record on the gateway, two columns directly)."""
    pairs = generate(tmp_path / "set", 30, HELDOUT_SEED + 100)
    shutil.copy(pairs[3][0], tmp_path / "set" / "images" / "copy_of_3.png")
    rows = [f"images/{p.name},{c}" for p, c in pairs]
    rows += [
        f"images/{pairs[0][0].name},a picture of some shapes",
        f"images/{pairs[2][0].name},{pairs[1][1]}",
        f"images/copy_of_3.png,{pairs[4][1]}",
    ]
    csv = tmp_path / "set" / "repeats.csv"
    csv.write_text("image_path,caption\n" + "\n".join(rows) + "\n")

    direct = evaluate(capsys, csv, "--model-path", str(SHAPES_MODEL))
    via = evaluate(capsys, csv, "--url", gateway_url, "--collection", "repeats")
    assert (direct["n_images"], direct["n_captions"]) == (31, 33)
    # The gateway encodes in other batches than the direct mode; where ONNX Runtime's
    # kernels are not batch-invariant (seen on an AVX2-only EPYC) the last bits differ and
    # one of these near-tied repeats may rank the other way: at most one query per figure.
    assert via["n_images"] == direct["n_images"]
    for direction in ("text_to_image", "image_to_text"):
        n = direct["n_captions"] if direction == "text_to_image" else direct["n_images"]
        for k, value in direct[direction].items():
            assert abs(via[direction][k] - value) <= 1 / n + 1e-9, (direction, k)
    # 30 distinct files; their 30 first captions linked to them, the 3 others plain texts.
    assert counts(gateway_url, "repeats") == {"images": 30, "texts": 33}


@pytest.mark.usefixtures("clean_settings")
def test_a_closed_port_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    generate(tmp_path / "set", 3, HELDOUT_SEED)
    port = free_port()  # bound then released: nothing listens there
    code = main(
        [
            "evaluate",
            "--captions",
            str(tmp_path / "set" / "captions.csv"),
            "--url",
            f"http://127.0.0.1:{port}",
            "--timeout",
            "5",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert f"cannot reach http://127.0.0.1:{port}" in err
    assert "Traceback" not in err


@pytest.mark.usefixtures("clean_settings")
def test_model_path_and_url_exclude_each_other(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    generate(tmp_path / "set", 2, HELDOUT_SEED)
    argv = ["evaluate", "--captions", str(tmp_path / "set" / "captions.csv")]
    assert main([*argv, "--url", "http://127.0.0.1:1", "--model-path", str(SHAPES_MODEL)]) == 2
    assert "exclude each other" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("details", "sizes"),
    [
        ({"max_batch_queries": 3}, [10, 3, 3, 3, 1]),  # the stated limit is used at once
        (None, [10, 5, 2, 2, 2, 2, 2]),  # no limit stated: halve until accepted
    ],
)
def test_batches_shrink_to_what_the_gateway_accepts(
    details: dict[str, int] | None, sizes: list[int]
) -> None:
    limit = 3 if details else 2
    seen: list[int] = []

    def send(chunk: Sequence[int]) -> list[int]:
        seen.append(len(chunk))
        if len(chunk) > limit:
            raise GatewayError("too many", status=422, code="too_many_queries", details=details)
        return [x * 2 for x in chunk]

    assert batched(list(range(10)), 10, send) == [x * 2 for x in range(10)]
    assert seen == sizes


def test_other_refusals_are_not_retried() -> None:
    def send(chunk: Sequence[int]) -> list[int]:
        raise GatewayError("bad", status=422, code="invalid_query")

    with pytest.raises(GatewayError, match="bad"):
        batched([1, 2, 3], 2, send)
