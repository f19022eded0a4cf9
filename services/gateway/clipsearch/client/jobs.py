"""The client's methods for ingest jobs: start one (``POST /v1/ingest``), read, list and
cancel them, and follow one through its server-sent events. Mixed into
:class:`clipsearch.client.Client` (one client), kept here so that module stays readable."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import httpx

from clipsearch.client.results import JobAccepted, JobView
from clipsearch.client.sse import parse_events

# A file to upload: a path, or (file name, bytes).
Upload = Path | tuple[str, bytes]


class JobMethods:
    """Ingest jobs (``/v1/ingest``, ``/v1/jobs``) and their progress."""

    if TYPE_CHECKING:

        def _json(self, method: str, path: str, **kwargs: Any) -> Any: ...

        def stream(
            self, method: str, path: str, **kwargs: Any
        ) -> contextlib.AbstractContextManager[httpx.Response]: ...

    def ingest(
        self,
        files: Sequence[Upload] = (),
        *,
        urls: Sequence[str] = (),
        captions_file: tuple[str, bytes] | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> JobAccepted:
        """``POST /v1/ingest``: start a bulk job from uploads and URLs; answers at once. A
        gateway with too much pending work refuses with status 429 and ``retry_after_s``."""
        data: dict[str, str] = {}
        if urls:
            data["urls"] = "\n".join(urls)
        if metadata is not None:
            data["metadata"] = json.dumps(metadata)
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        with opened(files) as parts:
            if captions_file is not None:
                parts.append(("captions_file", (*captions_file, "text/plain")))
            answer = self._json(
                "POST", "/v1/ingest", files=parts or None, data=data, headers=headers
            )
        return cast(JobAccepted, answer)

    def job(
        self, job_id: str, *, limit: int = 0, offset: int = 0, item_status: str | None = None
    ) -> JobView:
        """``GET /v1/jobs/{id}``: status and counts, with ``limit`` of its items."""
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if item_status is not None:
            params["item_status"] = item_status
        return cast(JobView, self._json("GET", f"/v1/jobs/{job_id}", params=params))

    def cancel_job(self, job_id: str) -> JobView:
        return cast(JobView, self._json("DELETE", f"/v1/jobs/{job_id}"))

    def jobs(self, *, status: str | None = None, limit: int = 100) -> list[JobView]:
        """``GET /v1/jobs``: jobs (without items), newest first, optionally in one status."""
        params: dict[str, Any] = {"limit": limit}
        if status is not None:
            params["status"] = status
        return cast(list[JobView], self._json("GET", "/v1/jobs", params=params)["jobs"])

    def job_events(self, job_id: str, *, interval: float = 0.5) -> Iterator[JobView]:
        """``GET /v1/jobs/{id}/events``: the job each time it changes, until it ends (the
        last view is the ``end`` event's). A stream the gateway closes at its age limit
        (``expired``) is opened again, so this follows a job of any length."""
        while True:
            params = {"interval": interval}
            with self.stream("GET", f"/v1/jobs/{job_id}/events", params=params) as r:
                for event, view in parse_events(r.iter_lines()):
                    yield cast(JobView, view)
                    if event == "end":
                        return
                    if event == "expired":
                        break
                else:  # closed without an end: the job is gone (pruned)
                    return


@contextlib.contextmanager
def opened(files: Sequence[Upload]) -> Iterator[list[tuple[str, Any]]]:
    """Multipart ``files`` parts; paths are opened here (and closed after), so a retried
    call re-reads them from the start."""
    with contextlib.ExitStack() as stack:
        parts: list[tuple[str, Any]] = []
        for f in files:
            if isinstance(f, Path):
                parts.append(("files", (f.name, stack.enter_context(f.open("rb")))))
            else:
                parts.append(("files", (f[0], f[1])))
        yield parts
