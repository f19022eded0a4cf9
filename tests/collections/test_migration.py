"""Moving a collection to another model without downtime, on each backend.

A thread searches continuously through a whole migration from the shapes model to a second
model (``shapes-tiny-v2``, its weights nudged): no request fails, every answer is scored by
the old model until the switch and by the new one after it (never by a mix, never back),
the fingerprint in ``/v1/stats`` and ``GET /v1/collections/{name}`` moves with it, counts
are equal at the end and a write made during the migration is there after it. Also: the
migrate route's bad input, the job in the jobs API, and a gateway stopped mid-migration
that finishes the job when started again.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clipsearch.encoder.local import LocalEncoder
from clipsearch.encoder.model_files import ModelFiles
from clipsearch.store.protocol import IndexSpec
from tests.collections.conftest import (
    BACKENDS,
    Api,
    backend_uri,
    gateway,
    pictures,
    suite_settings,
)
from tests.helpers import SHAPES_MODEL

QUERY = "a big shape in the middle"
TOLERANCE = 2e-5  # float32 cosine from Milvus vs numpy


def _error(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert body["error"]["code"] == code, body
    return body


@pytest.fixture(
    scope="module",
    params=BACKENDS,
)
def mig(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, model_b: Path
) -> Iterator[Api]:
    backend = str(request.param)
    tmp = tmp_path_factory.mktemp(f"migrate-{backend}")
    settings = suite_settings(
        backend,
        tmp,
        backend_uri(request, backend, tmp),
        extra_models=[str(model_b)],
        # Longer than any search in flight (Strong reads on a server wait ~200 ms each).
        migration_grace_s=3.0,
    )
    with gateway(settings, backend) as api:
        yield api


def _scores(model: Path, texts: list[str]) -> dict[str, float]:
    """The cosine of QUERY with each text, as ``model`` encodes them."""
    enc = LocalEncoder(ModelFiles(model), model_name=model.name)
    vectors = asyncio.run(enc.encode_texts([QUERY, *texts]))
    return {t: float(np.dot(vectors[0], v)) for t, v in zip(texts, vectors[1:], strict=True)}


def _wait_job(api: Api, job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = api.client.get(f"/v1/jobs/{job_id}").json()
        if body["status"] not in ("queued", "running") or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def _settle(api: Api, name: str, timeout: float = 30) -> dict[str, Any]:
    """The collection once the old pair's grace period has ended (no migration, no retired
    collections counted anywhere)."""
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = api.client.get(f"/v1/collections/{name}").json()
        if body["migration"] is None or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def test_search_runs_through_a_whole_migration(mig: Api, model_b: Path) -> None:
    c, name = mig.client, f"mg_{uuid.uuid4().hex[:8]}"
    assert c.put(f"/v1/collections/{name}").status_code == 201
    pngs, captions = pictures(40, seed=41)
    mig.stored(pngs, captions, collection=name)
    # A text corpus too: more to copy, so the migration surely outlasts the write below.
    corpus = [{"text": f"note number {i} about shapes"} for i in range(200)]
    r = c.post("/v1/texts", params={"collection": name}, json={"texts": corpus})
    assert r.status_code == 200, r.text
    extra_png, extra_caption = pictures(1, seed=4242)
    during_text = "written during the migration"
    texts = sorted({*captions, *extra_caption, during_text, *(t["text"] for t in corpus)})
    old, new = _scores(SHAPES_MODEL, texts), _scores(model_b, texts)
    before = c.get(f"/v1/collections/{name}").json()
    main_fp = c.get("/v1/stats").json()["encoder"]["fingerprint"]
    assert before["fingerprint"] == main_fp

    seen: list[tuple[int, str]] = []  # (status, "old" | "new" | "?") in request order
    stop = threading.Event()

    def search_forever() -> None:
        body = {"query": QUERY, "target": "texts", "top_k": 1}
        while not stop.is_set():
            r = c.post("/v1/search/text", params={"collection": name}, json=body)
            if r.status_code != 200 or not r.json()["hits"]:
                seen.append((r.status_code, r.text))
                continue
            hit = r.json()["hits"][0]
            score, text = hit["score"], hit["text"]
            kind = "?"
            if text in old and abs(score - old[text]) < TOLERANCE:
                kind = "old"
            if text in new and abs(score - new[text]) < TOLERANCE:
                kind = "new" if kind == "?" else "?"  # both fit: tells nothing
            seen.append((200, kind))

    thread = threading.Thread(target=search_forever, daemon=True)
    thread.start()
    try:
        while len(seen) < 3:  # some answers from before the migration
            time.sleep(0.01)
        r = c.post(f"/v1/collections/{name}/migrate", json={"model": "shapes-tiny-v2"})
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        # A write during the migration (its shadow collections exist from the 202 on).
        during = c.get(f"/v1/collections/{name}").json()
        mig.stored(extra_png, extra_caption, collection=name)
        r = c.post("/v1/texts", params={"collection": name},
                   json={"texts": [{"text": during_text}]})  # fmt: skip
        assert r.status_code == 200, r.text
        job = _wait_job(mig, job_id)
        after = _settle(mig, name)
        time.sleep(0.3)  # a few answers from after the switch
    finally:
        stop.set()
        thread.join(30)

    assert during["migration"] is not None, "the write came after the migration"
    assert during["migration"]["model_name"] == "shapes-tiny-v2"
    assert job["status"] == "done", job
    assert job["kind"] == "migrate"
    assert job["counts"]["total"] == 280  # 40 images + 40 captions + 200 texts
    assert job["counts"]["failed"] == 0
    assert job["counts"]["pending"] == 0
    failures = [s for s in seen if s[0] != 200]
    assert failures == [], failures[:3]
    kinds = [k for _, k in seen if k != "?"]
    assert kinds[0] == "old", kinds[:5]
    assert kinds[-1] == "new", kinds[-5:]
    switch = kinds.index("new")
    assert set(kinds[switch:]) == {"new"}, "an answer from the old model after the switch"
    # The collection moved, counts equal (plus the writes made meanwhile), fingerprint too.
    assert after["fingerprint"] != before["fingerprint"]
    assert after["model_name"] == "shapes-tiny-v2"
    assert after["counts"] == {"images": 41, "texts": 242}
    stats = c.get("/v1/stats").json()["collections"][name]
    assert stats["fingerprint"] == after["fingerprint"]
    assert stats["counts"] == after["counts"]
    # The write made during the migration is searchable with the new model.
    r = c.post("/v1/search/text", params={"collection": name},
               json={"query": "written during the migration", "target": "texts"})  # fmt: skip
    assert r.json()["hits"][0]["text"] == "written during the migration"
    assert r.json()["hits"][0]["score"] > 0.99998
    r = c.get(f"/v1/images/{mig.stored(extra_png, collection=name)[0]}/file",
              params={"collection": name})  # fmt: skip
    assert r.status_code == 200


def test_migrate_refuses_bad_input(mig: Api) -> None:
    c, name = mig.client, f"mb_{uuid.uuid4().hex[:8]}"
    _error(c.post(f"/v1/collections/{name}/migrate", json={"model": "shapes-tiny-v2"}), 404,
           "unknown_collection")  # fmt: skip
    assert c.put(f"/v1/collections/{name}").status_code == 201
    r = c.post(f"/v1/collections/{name}/migrate", json={"model": "nope"})
    _error(r, 409, "model_not_configured")
    r = c.post(f"/v1/collections/{name}/migrate", json={"model": "shapes-tiny"})
    _error(r, 409, "migration_not_needed")
    for body in ({}, {"model": ""}, {"model": "x", "extra": 1}, {"model": 5}):
        r = c.post(f"/v1/collections/{name}/migrate", json=body)
        assert r.status_code == 422, (body, r.text)
    assert c.post("/v1/collections/bad-name!/migrate", json={"model": "x"}).status_code == 422
    assert c.get(f"/v1/collections/{name}").json()["migration"] is None
    # A migration under way (its shadow pair made here directly): a second one is refused.
    store = c.app.state.clipsearch.store  # type: ignore[attr-defined]
    store.begin_shadow(name, dim=128, model_name="shapes-tiny-v2", fingerprint="fp-other",
                       index=IndexSpec("FLAT"))  # fmt: skip
    c.app.state.clipsearch.collections.forget(name)  # type: ignore[attr-defined]
    r = c.post(f"/v1/collections/{name}/migrate", json={"model": "shapes-tiny-v2"})
    _error(r, 409, "migration_in_progress")
    assert c.get(f"/v1/collections/{name}").json()["migration"]["fingerprint"] == "fp-other"
    store.drop_shadow(name)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_gateway_stopped_mid_migration_finishes_it_at_the_next_start(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    model_b: Path,
    backend: str,
) -> None:
    tmp = tmp_path_factory.mktemp(f"restart-{backend}")
    settings = suite_settings(
        backend,
        tmp,
        backend_uri(request, backend, tmp),
        extra_models=[str(model_b)],
        migration_grace_s=0.2,
    )
    pngs, captions = pictures(30, seed=51)
    with gateway(settings, backend) as first:
        first.stored(pngs, captions)
        r = first.client.post("/v1/collections/default/migrate", json={"model": "shapes-tiny-v2"})
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
    # Stopped at once: the job is left queued or running, the shadow pair half filled.
    with gateway(settings, backend) as second:
        job = _wait_job(second, job_id)
        assert job["status"] == "done", job
        after = _settle(second, "default")
        assert after["model_name"] == "shapes-tiny-v2"
        assert after["counts"] == {"images": 30, "texts": 30}
        r = second.client.post("/v1/search/text", json={"query": captions[0], "target": "texts"})
        assert r.status_code == 200, r.text
        assert r.json()["hits"][0]["score"] > 0.99998  # the query and texts: the new model
