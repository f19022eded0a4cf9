"""Read-your-writes under the default Session consistency, on Lite and on a real server.

Searches no longer ask for Strong consistency (a 200 ms floor per search on a server), so
these are the guarantees users rely on, checked the way they use them: the moment an ingest
job reports it is done, or ``POST /v1/images`` returns, a search finds every one of its
pictures. Many rounds in a loop, each writing new pictures, so a lag would show.
"""

from __future__ import annotations

import json
import time
from typing import Any

from tests.collections.conftest import Api, pictures

ROUNDS = 6
PER_ROUND = 5


def _wait_job(api: Api, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = api.client.get(f"/v1/jobs/{job_id}", params={"limit": 100}).json()
        if body["status"] not in ("queued", "running"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def _found(api: Api, collection: str, tag: str) -> set[str]:
    """Ids of the pictures whose metadata ``round`` is ``tag``, by one search right now."""
    body = {"query": "a shape", "top_k": 50, "filter": {"round": tag}}
    r = api.client.post("/v1/search/text", params={"collection": collection}, json=body)
    assert r.status_code == 200, r.text
    return {str(h["id"]) for h in r.json()["hits"]}


def test_search_right_after_an_ingest_job_finds_all_its_pictures(api: Api, collection: str) -> None:
    pngs, _ = pictures(ROUNDS * PER_ROUND, seed=41)
    assert api.settings.milvus_consistency.value == "session"  # the default under test
    for n in range(ROUNDS):
        part = pngs[n * PER_ROUND : (n + 1) * PER_ROUND]
        files = [("files", (f"r{n}_{i}.png", d, "image/png")) for i, d in enumerate(part)]
        r = api.client.post(
            "/v1/ingest",
            params={"collection": collection},
            files=files,
            data={"metadata": json.dumps({"round": f"job{n}"})},
        )
        assert r.status_code == 202, r.text
        job = _wait_job(api, r.json()["job_id"])
        assert job["status"] == "done", job
        ids = {str(i["id"]) for i in job["items"] if i["status"] == "stored"}
        assert len(ids) == PER_ROUND
        assert _found(api, collection, f"job{n}") == ids, f"round {n}"


def test_search_right_after_an_upload_finds_its_pictures(api: Api, collection: str) -> None:
    pngs, _ = pictures(ROUNDS * PER_ROUND, seed=43)
    for n in range(ROUNDS):
        part = pngs[n * PER_ROUND : (n + 1) * PER_ROUND]
        ids = set(api.stored(part, collection=collection, metadata=json.dumps({"round": f"up{n}"})))
        assert len(ids) == PER_ROUND
        assert _found(api, collection, f"up{n}") == ids, f"round {n}"
        # ...and a delete is seen as soon as it returns
        gone = sorted(ids)[0]
        r = api.client.delete(f"/v1/images/{gone}", params={"collection": collection})
        assert r.status_code in (200, 204), r.text
        assert _found(api, collection, f"up{n}") == ids - {gone}, f"round {n} after delete"
