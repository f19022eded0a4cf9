"""A typed, synchronous client for the clipsearch gateway's ``/v1`` API.

The CLI, ``clipsearch evaluate --url`` and the benches talk to the gateway through it, and
so can you::

    from pathlib import Path

    from clipsearch.client import Client, GatewayError

    with Client("http://127.0.0.1:8000", collection="photos") as gw:
        (item,) = gw.add_images([Path("cat.jpg")], captions=["a cat on a sofa"])
        for hit in gw.search_text("a cat", top_k=5)["hits"]:
            print(f"{hit['score']:.3f} {hit['id'][:12]} {hit['caption']}")
        similar = gw.search_image(image_id=item["id"], top_k=5)["hits"]
        try:
            gw.get_image("0" * 64)
        except GatewayError as exc:
            print(exc.status, exc.code, exc.url)  # 404 image_not_found http://...

Results are the gateway's JSON bodies, typed as :class:`~typing.TypedDict` in
:mod:`clipsearch.client.results` (so they stay plain dicts: print them, ``json.dumps``
them). Every failure is one exception, :class:`GatewayError`: the gateway's refusals
(any non-2xx answer) with its status, error ``code``, ``message`` and ``details``, and
unreachable gateways, timeouts or a malformed URL with status 0. Each request carries
``?collection=`` when the client was given one; otherwise
the gateway's default collection is used.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Unpack, cast

import httpx

from clipsearch.client.browse import CollectionMethods
from clipsearch.client.collections import CollectionAdmin
from clipsearch.client.errors import GatewayError, refusal, transport_errors
from clipsearch.client.jobs import JobMethods, Upload, opened
from clipsearch.client.results import (
    BatchResult,
    CollectionDeleted,
    CollectionInfo,
    Deleted,
    DuplicateGroup,
    Duplicates,
    Hit,
    HitList,
    ImageInfo,
    ItemError,
    ItemStatus,
    JobAccepted,
    JobCounts,
    JobItem,
    JobView,
    Page,
    SearchOptions,
    SearchResult,
    Similarity,
    StoredItem,
    Target,
    TextInfo,
    TextScore,
)

__all__ = [
    "JOB_RUNNING",
    "BatchResult",
    "Client",
    "CollectionDeleted",
    "CollectionInfo",
    "Deleted",
    "DuplicateGroup",
    "Duplicates",
    "GatewayError",
    "Hit",
    "HitList",
    "ImageInfo",
    "ItemError",
    "ItemStatus",
    "JobAccepted",
    "JobCounts",
    "JobItem",
    "JobView",
    "Page",
    "SearchOptions",
    "SearchResult",
    "Similarity",
    "StoredItem",
    "Target",
    "TextInfo",
    "TextScore",
    "Upload",
]


JOB_RUNNING = ("queued", "running")


class Client(CollectionMethods, CollectionAdmin, JobMethods):
    """The gateway at ``url``. ``api_key`` is sent as ``Authorization: Bearer`` on every
    request (a gateway with keys on answers 401 without one). ``http`` is an
    ``httpx.Client`` of your own (proxies, a test transport); the client then uses it as
    given and does not close it. Whole collections (browse, delete by filter, export,
    import): :class:`~clipsearch.client.browse.CollectionMethods`; the collections
    themselves (list, create, drop, migrate):
    :class:`~clipsearch.client.collections.CollectionAdmin`; ingest jobs:
    :class:`~clipsearch.client.jobs.JobMethods`."""

    def __init__(
        self,
        url: str = "http://127.0.0.1:8000",
        *,
        collection: str | None = None,
        timeout: float = 60.0,
        http: httpx.Client | None = None,
        api_key: str | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.collection = collection
        self._own = http is None
        self._http = http if http is not None else httpx.Client(timeout=timeout)
        self._auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def close(self) -> None:
        if self._own:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _prepare(self, path: str, kwargs: dict[str, Any]) -> str:
        """The URL of ``path``; puts ``?collection=`` and the key into ``kwargs``."""
        params = dict(kwargs.pop("params", None) or {})
        if self.collection is not None:
            params.setdefault("collection", self.collection)
        kwargs["params"] = params or None
        if self._auth:
            kwargs["headers"] = {**self._auth, **(kwargs.get("headers") or {})}
        return f"{self.url}{path}"

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One call; a non-2xx answer or no answer raises :class:`GatewayError`."""
        url = self._prepare(path, kwargs)
        with transport_errors(method, url, self.url):
            response = self._http.request(method, url, **kwargs)
        if not response.is_success:
            raise refusal(response.request, response)
        return response

    @contextlib.contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """A streamed call (server-sent events); errors as :meth:`request`, the body of a
        refusal read first so its error shape is reported."""
        url = self._prepare(path, kwargs)
        with (
            transport_errors(method, url, self.url),
            self._http.stream(method, url, **kwargs) as response,
        ):
            if not response.is_success:
                response.read()
                raise refusal(response.request, response)
            yield response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    # -- records ------------------------------------------------------------------------

    def add_images(
        self,
        files: Sequence[Upload],
        *,
        captions: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    ) -> list[StoredItem]:
        """``POST /v1/images``: store pictures synchronously, one result per file in order.
        ``captions``: one per file; ``metadata``: one object for all, or one per file."""
        data: dict[str, Any] = {}
        if captions is not None:
            data["captions"] = list(captions)
        if metadata is not None:
            data["metadata"] = json.dumps(metadata)
        with opened(files) as parts:
            body = self._json("POST", "/v1/images", files=parts, data=data)
        return cast(list[StoredItem], body["items"])

    def add_texts(
        self, texts: Sequence[str], *, metadata: Sequence[Mapping[str, Any]] | None = None
    ) -> list[StoredItem]:
        """``POST /v1/texts``: a text-only corpus (for image->text and text->text search)."""
        metas = list(metadata) if metadata is not None else [{}] * len(texts)
        rows = [{"text": t, "metadata": dict(m)} for t, m in zip(texts, metas, strict=True)]
        return cast(
            list[StoredItem], self._json("POST", "/v1/texts", json={"texts": rows})["items"]
        )

    def get_image(self, image_id: str) -> ImageInfo:
        return cast(ImageInfo, self._json("GET", f"/v1/images/{image_id}"))

    def patch_image(self, image_id: str, **changes: Any) -> ImageInfo:
        """``PATCH /v1/images/{id}``: ``metadata``, ``metadata_mode`` (merge|replace),
        ``caption``, ``add_captions``, ``remove_captions``; the updated record."""
        return cast(ImageInfo, self._json("PATCH", f"/v1/images/{image_id}", json=changes))

    def patch_text(self, text_id: str, **changes: Any) -> TextInfo:
        """``PATCH /v1/texts/{id}``: ``text``, ``metadata``, ``metadata_mode``; a new text
        comes back with a new ``id`` (``replaced_id`` is the old one)."""
        return cast(TextInfo, self._json("PATCH", f"/v1/texts/{text_id}", json=changes))

    def delete_image(self, image_id: str) -> Deleted:
        """Deletes the image, its linked texts and (if no other collection holds it) the blob."""
        return cast(Deleted, self._json("DELETE", f"/v1/images/{image_id}"))

    def delete_text(self, text_id: str) -> Deleted:
        return cast(Deleted, self._json("DELETE", f"/v1/texts/{text_id}"))

    # -- search -------------------------------------------------------------------------

    def search_text(
        self,
        query: str | dict[str, float],
        *,
        expand: bool = False,
        **options: Unpack[SearchOptions],
    ) -> SearchResult:
        """``POST /v1/search/text``. ``options`` (:class:`SearchOptions`): ``target``
        (images|texts), ``top_k``, ``offset``, ``min_score``, ``filter``, ``rerank``.
        ``query`` may be weighted terms (``{"a red circle": 1.0, "on the left": -0.3}``);
        ``expand`` adds the server's dictionary expansions (listed in ``expansions``)."""
        body: dict[str, Any] = {"query": query, **_options(options)}
        if expand:
            body["expand"] = True
        return cast(SearchResult, self._json("POST", "/v1/search/text", json=body))

    def search_image(
        self,
        image: Upload | None = None,
        *,
        image_id: str | None = None,
        **options: Unpack[SearchOptions],
    ) -> SearchResult:
        """``POST /v1/search/image`` with a picture (uploaded as a file) or the ``image_id``
        of a stored one (its stored vector is reused); ``options`` as :meth:`search_text`."""
        if (image is None) == (image_id is None):
            raise ValueError("give an image or an image_id (not both)")
        opts = _options(options)
        if image_id is not None:
            body = {"image_id": image_id, **opts}
            return cast(SearchResult, self._json("POST", "/v1/search/image", json=body))
        assert image is not None
        form = {k: v if isinstance(v, str) else json.dumps(v) for k, v in opts.items()}
        with opened([image]) as parts:
            file = parts[0][1]
            answer = self._json("POST", "/v1/search/image", files={"file": file}, data=form)
        return cast(SearchResult, answer)

    def search_batch(
        self, queries: Sequence[Mapping[str, str]], **options: Unpack[SearchOptions]
    ) -> BatchResult:
        """``POST /v1/search/batch``: each query one of ``{"text"}``, ``{"image_id"}`` or
        ``{"image_base64"}``; one hit list per query, in order."""
        body = {"queries": [dict(q) for q in queries], **_options(options)}
        return cast(BatchResult, self._json("POST", "/v1/search/batch", json=body))

    def similar(
        self,
        image_id: str,
        *,
        top_k: int | None = None,
        min_score: float | None = None,
        filter: Mapping[str, Any] | None = None,
    ) -> SearchResult:
        """``GET /v1/images/{id}/similar``: the images nearest to a stored one (itself left
        out), best first."""
        params: dict[str, Any] = {"top_k": top_k, "min_score": min_score}
        if filter:
            params["filter"] = json.dumps(dict(filter))
        params = {k: v for k, v in params.items() if v is not None}
        path = f"/v1/images/{image_id}/similar"
        return cast(SearchResult, self._json("GET", path, params=params))

    def duplicates(
        self,
        *,
        min_score: float = 0.95,
        limit: int | None = None,
        cursor: str | None = None,
        collection: str | None = None,
    ) -> Duplicates:
        """``GET /v1/collections/{name}/duplicates``: one page of near-duplicate groups of
        ``collection`` (default: this client's, else ``default``); pass ``next_cursor``
        back as ``cursor`` until it is None."""
        name = collection or self.collection or "default"
        params: dict[str, Any] = {"min_score": min_score, "limit": limit, "cursor": cursor}
        params = {k: v for k, v in params.items() if v is not None}
        path = f"/v1/collections/{name}/duplicates"
        return cast(Duplicates, self._json("GET", path, params=params))

    def similarity(
        self, texts: Sequence[str], image: Upload | None = None, *, image_id: str | None = None
    ) -> Similarity:
        """``POST /v1/similarity``: the picture (uploaded) or a stored ``image_id`` against
        ``texts``: per text, in order, ``cosine`` and ``softmax`` (CLIP's, over the texts)."""
        if (image is None) == (image_id is None):
            raise ValueError("give an image or an image_id (not both)")
        if image_id is not None:
            body = {"image_id": image_id, "texts": list(texts)}
            return cast(Similarity, self._json("POST", "/v1/similarity", json=body))
        assert image is not None
        with opened([image]) as parts:
            answer = self._json(
                "POST", "/v1/similarity", files={"file": parts[0][1]}, data={"texts": list(texts)}
            )
        return cast(Similarity, answer)

    # -- the gateway --------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """``GET /v1/stats``: per collection counts and model; encoder, store, latencies."""
        return cast(dict[str, Any], self._json("GET", "/v1/stats"))

    def metrics(self) -> str:
        """``GET /metrics``: the Prometheus text."""
        return self.request("GET", "/metrics").text


def _options(options: SearchOptions) -> dict[str, Any]:
    # Checked here too: callers without a type checker get a TypeError, not a 422.
    unknown = set(options) - set(SearchOptions.__annotations__)
    if unknown:
        raise TypeError(f"unknown search options: {sorted(unknown)}")
    return {k: v for k, v in options.items() if v is not None}
