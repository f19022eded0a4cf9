"""Request bodies: a JSON limit per route counted while the body streams in (an over-limit
body is cut at the limit, never read whole; multipart keeps the large limit, chunked too),
and JSON nested 10,000 deep is a 422, in bodies and in form fields alike."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from clipsearch.api.app import create_app
from clipsearch.api.middleware import BodySizeLimit
from clipsearch.core.config import Settings
from tests.api.conftest import Gateway
from tests.api.test_bad_input import assert_error
from tests.helpers import SHAPES_MODEL

DEEP = "[" * 10_000 + "]" * 10_000
DEEP_OBJECT = '{"a": ' * 10_000 + "1" + "}" * 10_000
LIMITS = {"search": 4096, "texts": 8192, "ingest": 16384}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A gateway with small JSON limits (the multipart limit stays large)."""
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path_factory.mktemp("json-limits"),
        model_path=SHAPES_MODEL,
        max_request_bytes=4 * 1024 * 1024,
        max_json_bytes_search=LIMITS["search"],
        max_json_bytes_texts=LIMITS["texts"],
        max_json_bytes_ingest=LIMITS["ingest"],
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize(
    ("path", "limit", "body"),
    [
        ("/v1/search/text", "search", {"query": "a red circle " * 400}),
        ("/v1/search/image", "search", {"image_base64": "A" * 5000}),
        ("/v1/search/batch", "search", {"queries": [{"text": "a red circle"}] * 300}),
        ("/v1/texts", "texts", {"texts": [{"text": "a red circle"}] * 600}),
        ("/v1/ingest", "ingest", {"urls": ["http://127.0.0.1:9/a.png"] * 700}),
    ],
)
def test_json_over_its_route_limit_is_413(
    small: TestClient, path: str, limit: str, body: dict[str, Any]
) -> None:
    raw = json.dumps(body).encode()
    assert LIMITS[limit] < len(raw) < 4 * 1024 * 1024  # over the JSON limit, under multipart's
    headers = {"content-type": "application/json"}
    err = assert_error(small.post(path, content=raw, headers=headers), 413, "payload_too_large")
    assert err["details"] == {"max_bytes": LIMITS[limit]}

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
        for i in range(0, len(raw), 1000):
            yield raw[i : i + 1000]

    assert_error(small.post(path, content=chunks(), headers=headers), 413, "payload_too_large")


def test_multipart_keeps_the_large_limit(small: TestClient) -> None:
    # 20 kB of form data is over every JSON limit but far under max_request_bytes.
    r = small.post(
        "/v1/search/image",
        files={"file": ("x.png", b"not an image" * 2000, "image/png")},
    )
    assert_error(r, 422, "invalid_image")


def test_over_limit_body_is_cut_at_the_limit() -> None:
    """The middleware stops reading once the limit is passed: a 100 MB body sent in 64 kB
    chunks is answered after the first chunks, the rest is never read."""
    chunk = b" " * 65536
    total_chunks = 1600  # 100 MB
    read = 0
    reached_app = False

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal reached_app
        reached_app = True
        while (await receive()).get("more_body"):
            pass

    async def receive() -> Message:
        nonlocal read
        read += 1
        return {"type": "http.request", "body": chunk, "more_body": read < total_chunks}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    limited = BodySizeLimit(app, max_bytes=200 * 1024 * 1024, json_limits={"": 1024 * 1024})
    scope = {"type": "http", "path": "/v1/search/text", "headers": []}
    asyncio.run(limited(scope, receive, send))
    assert reached_app
    assert sent[0]["status"] == 413
    assert read == 1024 * 1024 // len(chunk) + 1  # one chunk past the limit, no more


BODIES = [
    ("/v1/search/text", DEEP),
    ("/v1/search/text", '{"query": "a", "filter": ' + DEEP_OBJECT + "}"),
    ("/v1/search/image", DEEP),
    ("/v1/search/image", '{"image_id": "x", "filter": ' + DEEP_OBJECT + "}"),
    ("/v1/search/batch", DEEP),
    ("/v1/texts", '{"texts": [{"text": "a", "metadata": ' + DEEP_OBJECT + "}]}"),
    ("/v1/ingest", '{"urls": ["http://x/a.png"], "metadata": ' + DEEP_OBJECT + "}"),
]


@pytest.mark.parametrize(
    ("path", "raw"), BODIES, ids=[f"{p}-{i}" for i, (p, _) in enumerate(BODIES)]
)
def test_deeply_nested_json_body_is_422(gateway: Gateway, path: str, raw: str) -> None:
    r = gateway.client.post(path, content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] in {"invalid_json", "invalid_body"}


def test_deeply_nested_json_in_form_fields_is_422(gateway: Gateway) -> None:
    png = gateway.corpus.pngs[3]
    r = gateway.client.post(
        "/v1/images",
        params={"collection": "deepform"},
        files=[("files", ("a.png", png, "image/png"))],
        data={"metadata": DEEP_OBJECT},
    )
    assert_error(r, 422, "invalid_metadata")
    r = gateway.client.post(
        "/v1/search/image", files={"file": ("a.png", png, "image/png")}, data={"filter": DEEP}
    )
    assert_error(r, 422, "invalid_filter")
    r = gateway.client.post(
        "/v1/ingest", files={"urls": (None, "http://x/a.png"), "metadata": (None, DEEP_OBJECT)}
    )
    assert_error(r, 422, "invalid_metadata")


def test_not_utf8_json_is_422(gateway: Gateway) -> None:
    r = gateway.client.post(
        "/v1/search/text",
        content=b'{"query": "\xff"}',
        headers={"content-type": "application/json"},
    )
    assert_error(r, 422, "invalid_json")


def test_oversized_chunked_multipart_ingest_is_413(small: TestClient) -> None:
    # No Content-Length: the limit is found while the multipart parser reads, and must stay
    # a 413 (it was a 422 "malformed multipart body" when the parser wrapped every error).
    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()

    def body() -> Iterator[bytes]:
        yield head
        for _ in range(5 * 16):  # 5 MB, over max_request_bytes (4 MB)
            yield b"\0" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    r = small.post(
        "/v1/ingest",
        content=body(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert_error(r, 413, "payload_too_large")
    assert small.get("/v1/jobs").json()["jobs"] == []  # no job recorded


def test_a_multipart_header_on_a_json_route_gets_the_json_limit(small: TestClient) -> None:
    # Only the upload routes read multipart: elsewhere the header buys no larger body.
    boundary = "b0undary"
    body = f"--{boundary}\r\n".encode() + b"x" * 20_000 + f"\r\n--{boundary}--\r\n".encode()
    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    for path, limit in (("/v1/search/text", "search"), ("/v1/texts", "texts")):
        err = assert_error(small.post(path, content=body, headers=headers), 413)
        assert err["details"] == {"max_bytes": LIMITS[limit]}
