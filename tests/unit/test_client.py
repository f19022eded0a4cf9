"""``clipsearch.client`` against a real gateway app served by uvicorn on loopback (the
``url`` fixture: in-memory fake adapters behind it, so no model is loaded): every call, its
typed result, and every failure as one :class:`GatewayError` with status, code and URL."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.helpers import free_port, noise

from clipsearch.client import JOB_RUNNING, Client, GatewayError


@pytest.fixture
def gw(url: str, request: pytest.FixtureRequest) -> Iterator[Client]:
    # A collection per test: the tests share one gateway but not their records.
    with Client(url, collection=request.node.name.replace("test_", "c_")[:60]) as client:
        yield client


def test_images_are_stored_found_read_and_deleted(gw: Client, tmp_path: Path) -> None:
    on_disk = tmp_path / "b.png"
    on_disk.write_bytes(noise(2))
    items = gw.add_images(
        [("a.png", noise(1)), on_disk], captions=["first", "second"], metadata={"album": "x"}
    )
    assert [(i["source"], i["status"], i["error"]) for i in items] == [
        ("a.png", "stored", None),
        ("b.png", "stored", None),
    ]
    a, b = (str(i["id"]) for i in items)
    assert gw.add_images([("again.png", noise(1))])[0]["status"] == "duplicate"

    info = gw.get_image(a)
    assert (info["id"], info["caption"], info["metadata"]) == (a, "first", {"album": "x"})
    info = gw.patch_image(a, metadata={"year": 2024}, add_captions=["third"])
    assert info["captions"] == ["first", "third"]
    assert info["metadata"] == {"album": "x", "year": 2024}
    with pytest.raises(GatewayError) as refused:
        gw.patch_image(a)
    assert (refused.value.status, refused.value.code) == (422, "empty_patch")

    # The fake encoder maps equal bytes to equal vectors: a picture finds itself first.
    by_upload = gw.search_image(("q.png", noise(2)), top_k=2)
    assert by_upload["hits"][0]["id"] == b
    assert by_upload["took_ms"] >= 0
    by_id = gw.search_image(image_id=a, top_k=1)
    assert by_id["hits"][0]["id"] == a
    assert by_id["hits"][0]["score"] == pytest.approx(1.0)
    filtered = gw.search_text("anything", top_k=5, filter={"album": "y"})
    assert filtered["hits"] == []

    deleted = gw.delete_image(a)
    assert (deleted["id"], deleted["deleted"]) == (a, True)
    assert gw.stats()["collections"][gw.collection]["counts"]["images"] == 1


def test_texts_and_batches(gw: Client) -> None:
    items = gw.add_texts(["a red circle", "a blue square"], metadata=[{"n": 1}, {"n": 2}])
    assert [i["status"] for i in items] == ["stored", "stored"]
    hit = gw.search_text("a red circle", target="texts", top_k=1)["hits"][0]
    assert (hit["text"], hit["metadata"]) == ("a red circle", {"n": 1})
    assert hit["score"] == pytest.approx(1.0, abs=1e-5)

    batch = gw.search_batch([{"text": "a blue square"}, {"text": "a red circle"}], target="texts")
    assert [r["hits"][0]["text"] for r in batch["results"]] == ["a blue square", "a red circle"]

    changed = gw.patch_text(str(items[1]["id"]), text="a blue square, tilted")
    assert (changed["replaced_id"], changed["text"]) == (items[1]["id"], "a blue square, tilted")
    assert changed["metadata"] == {"n": 2}

    assert gw.delete_text(str(items[0]["id"]))["deleted"] is True
    left = [h["text"] for h in gw.search_text("x", target="texts")["hits"]]
    assert left == ["a blue square, tilted"]


def test_an_ingest_job_runs_to_the_end(gw: Client, tmp_path: Path) -> None:
    files = [tmp_path / f"{i}.png" for i in range(3)]
    for i, f in enumerate(files):
        f.write_bytes(noise(100 + i))
    accepted = gw.ingest([*files, ("broken.png", b"not a picture")], metadata={"batch": 7})
    assert (accepted["status"], accepted["total"], accepted["existing"]) == ("queued", 4, False)
    deadline = time.monotonic() + 60
    view = gw.job(accepted["job_id"])
    while view["status"] in JOB_RUNNING:
        assert time.monotonic() < deadline, view
        time.sleep(0.05)
        view = gw.job(accepted["job_id"])
    assert view["status"] == "partial"
    assert view["collection"] == gw.collection
    assert view["counts"] == {
        "total": 4, "stored": 3, "updated": 0, "duplicate": 0, "failed": 1, "pending": 0
    }  # fmt: skip
    failed = gw.job(accepted["job_id"], item_status="failed", limit=10)["items"]
    assert [i["source"] for i in failed or []] == ["broken.png"]
    assert "clipsearch_http_requests_total" in gw.metrics()


def test_a_refusal_carries_status_code_details_and_url(gw: Client, url: str) -> None:
    missing = "0" * 64
    gw.add_texts(["the collection exists"])
    with pytest.raises(GatewayError) as exc:
        gw.get_image(missing)
    err = exc.value
    assert (err.status, err.code) == (404, "image_not_found")
    assert err.url == f"{url}/v1/images/{missing}?collection={gw.collection}"
    assert str(err).startswith(f"GET {err.url} answered 404 image_not_found: ")

    with pytest.raises(GatewayError) as exc:
        gw.search_batch([{"text": str(i)} for i in range(5)])
    assert (exc.value.status, exc.value.code) == (422, "too_many_queries")
    assert exc.value.limit("max_batch_queries") == 4
    assert exc.value.limit("max_top_k") is None

    with pytest.raises(GatewayError) as exc:
        gw.search_text("x", top_k=50)
    assert (exc.value.code, exc.value.limit("max_top_k")) == ("top_k_too_large", 20)


def test_an_unreachable_gateway_is_status_zero() -> None:
    port = free_port()  # bound then released: nothing listens there
    with (
        Client(f"http://127.0.0.1:{port}/", timeout=5) as gw,
        pytest.raises(GatewayError) as exc,
    ):
        gw.stats()
    assert (exc.value.status, exc.value.code) == (0, "unreachable")
    assert exc.value.url == f"http://127.0.0.1:{port}/v1/stats"
    assert str(exc.value).startswith(f"cannot reach http://127.0.0.1:{port}: ")


def test_a_malformed_url_is_the_same_error() -> None:
    for bad in ("http://[::1", "ftp://example.org", "no scheme"):
        with Client(bad) as gw, pytest.raises(GatewayError) as exc:
            gw.stats()
        assert (exc.value.status, exc.value.code) == (0, "invalid_url"), bad


def test_the_module_example_runs(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The usage example in the module docstring, against the test gateway."""
    import clipsearch.client

    doc = clipsearch.client.__doc__ or ""
    example = textwrap.dedent(doc.split("::\n", 1)[1].split("\nResults", 1)[0])
    (tmp_path / "cat.jpg").write_bytes(noise(9, fmt="JPEG"))
    monkeypatch.chdir(tmp_path)
    example = example.replace('"http://127.0.0.1:8000"', repr(url))
    exec(compile(example, "clipsearch.client.__doc__", "exec"), {})


def test_a_non_json_refusal_keeps_the_start_of_the_body() -> None:
    """A proxy in front of the gateway answers with its own page, not the error shape."""

    def proxy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            502, text="<html>" + "bad gateway " * 100, headers={"Retry-After": "7"}
        )

    http = httpx.Client(transport=httpx.MockTransport(proxy))
    with Client("http://gw.test", http=http) as gw, pytest.raises(GatewayError) as exc:
        gw.search_text("x")
    assert (exc.value.status, exc.value.code, exc.value.retry_after_s) == (502, "", 7.0)
    assert exc.value.message.startswith("<html>bad gateway")
    assert len(exc.value.message) == 300
    assert not http.is_closed  # a client passed in belongs to the caller
    http.close()


def test_search_options_are_checked_before_sending(gw: Client) -> None:
    with pytest.raises(TypeError, match="topk"):
        gw.search_text("x", topk=3)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="not both"):
        gw.search_image(("q.png", b""), image_id="abc")


def test_similar_and_duplicates(gw: Client) -> None:
    items = gw.add_images([(f"{i}.png", noise(i)) for i in range(3)])
    ids = [str(i["id"]) for i in items]
    hits = gw.similar(ids[0], top_k=5)["hits"]
    assert sorted(h["id"] for h in hits) == sorted(ids[1:])  # itself left out
    assert gw.similar(ids[0], min_score=1.0)["hits"] == []
    page = gw.duplicates(min_score=0.99, limit=2)
    assert (page["groups"], page["scanned"]) == ([], 2)
    assert page["next_cursor"] == sorted(ids)[1]
    last = gw.duplicates(min_score=0.99, cursor=page["next_cursor"])
    assert (last["scanned"], last["next_cursor"]) == (1, None)
    with pytest.raises(GatewayError) as exc:
        gw.duplicates(min_score=2)
    assert (exc.value.status, exc.value.code) == (422, "invalid_min_score")
