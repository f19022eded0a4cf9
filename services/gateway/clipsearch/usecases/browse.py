"""Browse: every record of a collection, a page at a time, behind an opaque cursor.

Pages follow the store's id order (:meth:`VectorStore.scan`, keyset paging), so walking
from the first page to the last sees every record present throughout exactly once,
however many there are (no offset, no 16,384 cap), and records written meanwhile are seen
or not by where their id falls. The cursor is the last id of a page, versioned and
base64url-encoded: clients pass it back as it is and must not build one.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from clipsearch.core.config import Settings
from clipsearch.core.errors import InvalidRequest
from clipsearch.store.protocol import Filter, Target, VectorStore
from clipsearch.usecases.collections import Collections
from clipsearch.usecases.common import check_filter, run_sync
from clipsearch.usecases.image_patch import linked_captions

CURSOR_VERSION = 1
DEFAULT_LIMIT = 100
_MAX_CURSOR_CHARS = 512


@dataclass(slots=True)
class BrowsePage:
    """Rows as :meth:`VectorStore.get` returns them; ``total`` when it was cheap (no filter)."""

    rows: list[dict[str, Any]]
    next_cursor: str | None
    total: int | None


def encode_cursor(target: Target, after: str) -> str:
    raw = json.dumps({"v": CURSOR_VERSION, "t": target, "a": after}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, target: Target) -> str:
    """The id a page starts after; :class:`InvalidRequest` ``invalid_cursor`` for a cursor
    this server did not make for this target."""
    bad = InvalidRequest(
        "invalid cursor: pass back the next_cursor of a page of the same endpoint",
        code="invalid_cursor",
    )
    if len(cursor) > _MAX_CURSOR_CHARS:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise bad from exc
    if not isinstance(data, dict) or data.get("v") != CURSOR_VERSION or data.get("t") != target:
        raise bad
    after = data.get("a")
    if not isinstance(after, str) or not after:
        raise bad
    return after


class BrowseService:
    """Pages of images or texts of a collection, optionally filtered on metadata."""

    def __init__(self, settings: Settings, store: VectorStore, collections: Collections) -> None:
        self._settings = settings
        self._store = store
        self._collections = collections

    def check_limit(self, limit: int | None) -> int:
        top = self._settings.max_browse_limit
        if limit is None:
            return min(DEFAULT_LIMIT, top)
        if not 1 <= limit <= top:
            raise InvalidRequest(
                f"limit must be between 1 and {top}",
                code="invalid_limit",
                details={"max_browse_limit": top},
            )
        return limit

    async def page(
        self,
        collection: str,
        target: Target,
        *,
        filter: Filter | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> BrowsePage:
        """One page after ``cursor`` (the first page without one)."""
        size = self.check_limit(limit)
        after = decode_cursor(cursor, target) if cursor else ""
        filters = check_filter(filter)
        group = await self._collections.for_read(collection)
        got = await run_sync(
            self._store.scan, group, target, after=after, limit=size, filter=filters
        )
        if target == "images" and got.rows:
            await self._add_captions(group, got.rows)
        total = None if filters else await run_sync(self._store.count, group, target)
        nxt = encode_cursor(target, got.next_after) if got.next_after is not None else None
        return BrowsePage(rows=got.rows, next_cursor=nxt, total=total)

    async def _add_captions(self, group: str, rows: list[dict[str, Any]]) -> None:
        """Each image's ``captions`` (main first), as ``GET /v1/images/{id}`` shows them:
        one store query per 100 images, not one per image."""
        ids = [str(r["id"]) for r in rows]
        texts = await run_sync(self._store.texts_of_images, group, ids)
        by_image: dict[str, list[dict[str, Any]]] = {}
        for t in texts:
            by_image.setdefault(str(t["image_id"]), []).append(t)
        for row in rows:
            row["captions"] = linked_captions(
                by_image.get(str(row["id"]), []), str(row.get("caption") or "")
            )
