"""The client's methods for whole collections: browse pages, delete by filter, export to a
file and import from one (streamed both ways). Mixed into :class:`clipsearch.client.Client`
(one client), kept here so that module stays readable."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import httpx

from clipsearch.client.results import Page, Target


class CollectionMethods:
    """Browse, delete by filter, export, import (see README: "Export format")."""

    if TYPE_CHECKING:

        def _json(self, method: str, path: str, **kwargs: Any) -> Any: ...

        def stream(
            self, method: str, path: str, **kwargs: Any
        ) -> contextlib.AbstractContextManager[httpx.Response]: ...

    def list_records(
        self,
        target: Target = "images",
        *,
        filter: Mapping[str, Any] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page:
        """``GET /v1/images`` or ``/v1/texts``: one page; pass ``next_cursor`` back."""
        params: dict[str, Any] = {"limit": limit, "cursor": cursor}
        if filter:
            params["filter"] = json.dumps(filter)
        params = {k: v for k, v in params.items() if v is not None}
        return cast(Page, self._json("GET", f"/v1/{target}", params=params))

    def delete_images(self, filter: Mapping[str, Any]) -> dict[str, int]:
        """``DELETE /v1/images?filter=``: every image the (non-empty) filter matches."""
        params = {"filter": json.dumps(filter)}
        return cast(dict[str, int], self._json("DELETE", "/v1/images", params=params))

    def export_collection(
        self,
        name: str,
        out: Path,
        *,
        format: str = "parquet",
        blobs: bool = False,
        filter: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> int:
        """``GET /v1/collections/{name}/export`` streamed into the file ``out`` (written
        whole or removed); the bytes written. ``timeout``: seconds between two reads."""
        params: dict[str, Any] = {"format": format, "blobs": str(blobs).lower()}
        if filter:
            params["filter"] = json.dumps(filter)
        size = 0
        try:
            with (
                self.stream(
                    "GET", f"/v1/collections/{name}/export", params=params, timeout=_long(timeout)
                ) as response,
                out.open("wb") as f,
            ):
                for chunk in response.iter_bytes():
                    f.write(chunk)
                    size += len(chunk)
        except BaseException:
            out.unlink(missing_ok=True)
            raise
        return size

    def import_collection(
        self, name: str, file: Path, *, timeout: float | None = None
    ) -> dict[str, Any]:
        """``POST /v1/collections/{name}/import``: the export ``file``, streamed from disk
        (admin key); what was restored. ``timeout``: seconds to wait for the answer."""
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Length": str(file.stat().st_size),
        }
        with file.open("rb") as f:
            return cast(
                dict[str, Any],
                self._json(
                    "POST",
                    f"/v1/collections/{name}/import",
                    content=_chunks(f),
                    headers=headers,
                    timeout=_long(timeout),
                ),
            )


def _long(read_s: float | None) -> httpx.Timeout:
    """Connect quickly, then wait ``read_s`` (None: as long as it takes) for the data."""
    return httpx.Timeout(30.0, read=read_s)


def _chunks(f: IO[bytes], size: int = 1 << 20) -> Iterator[bytes]:
    while chunk := f.read(size):
        yield chunk
