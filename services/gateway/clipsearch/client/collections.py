"""The client's methods for the collections themselves: list, read, create (idempotent),
drop, migrate to another model, and the ``auto`` threshold (``/v1/collections``). Mixed into
:class:`clipsearch.client.Client` (one client); browsing a collection's records, export and
import are :mod:`.browse`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from clipsearch.client.results import CollectionDeleted, CollectionInfo, JobAccepted

if TYPE_CHECKING:
    import httpx


class CollectionAdmin:
    """``/v1/collections``: reads need the read scope, the rest an admin key."""

    if TYPE_CHECKING:

        def _json(self, method: str, path: str, **kwargs: Any) -> Any: ...

        def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response: ...

    def collections(self) -> list[CollectionInfo]:
        """``GET /v1/collections``: every collection, with its model, index and counts."""
        answer = self._json("GET", "/v1/collections")
        return cast(list[CollectionInfo], answer["collections"])

    def collection_info(self, name: str) -> CollectionInfo:
        """``GET /v1/collections/{name}``; 404 ``unknown_collection``."""
        return cast(CollectionInfo, self._json("GET", f"/v1/collections/{name}"))

    def create_collection(
        self,
        name: str,
        *,
        model: str | None = None,
        index_type: str | None = None,
        index_params: dict[str, int] | None = None,
    ) -> tuple[CollectionInfo, bool]:
        """``PUT /v1/collections/{name}``: the collection and whether it was created now
        (False: it existed with this spec). ``model``: a configured model (default: the
        main one); the index default is the server's settings. 409
        ``collection_spec_mismatch`` when it exists otherwise."""
        body: dict[str, Any] = {}
        if model is not None:
            body["model"] = model
        if index_type is not None or index_params:
            body["index"] = {"type": index_type or "HNSW", "params": dict(index_params or {})}
        response = self.request("PUT", f"/v1/collections/{name}", json=body)
        return cast(CollectionInfo, response.json()), response.status_code == 201

    def delete_collection(self, name: str) -> CollectionDeleted:
        """``DELETE /v1/collections/{name}``: drop it, its records and unshared files."""
        return cast(CollectionDeleted, self._json("DELETE", f"/v1/collections/{name}"))

    def migrate_collection(self, name: str, model: str) -> JobAccepted:
        """``POST /v1/collections/{name}/migrate``: start moving it to ``model``; a job
        (follow it with ``job_events``)."""
        body = {"model": model}
        return cast(JobAccepted, self._json("POST", f"/v1/collections/{name}/migrate", json=body))

    def set_threshold(
        self, name: str, min_score: float | None, *, model_fingerprint: str | None = None
    ) -> CollectionInfo:
        """``PUT /v1/collections/{name}/threshold``: what ``min_score: "auto"`` means for
        it (None: remove); with ``model_fingerprint``, 409 ``model_mismatch`` unless that
        is the collection's model (admin key)."""
        body = {"min_score": min_score, "model_fingerprint": model_fingerprint}
        path = f"/v1/collections/{name}/threshold"
        return cast(CollectionInfo, self._json("PUT", path, json=body))
