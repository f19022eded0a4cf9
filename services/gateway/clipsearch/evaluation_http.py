"""Retrieval quality through a running gateway's public API (``clipsearch evaluate --url``).

The pictures go into one collection with ``POST /v1/images``, each with its first caption
(further captions, and the captions of pictures the collection already held, go in with
``POST /v1/texts``). Then every caption is a text query against the images and every
picture an ``image_id`` query against the texts, through ``POST /v1/search/batch``.

The hits' scores fill the same caption x image score table the direct mode computes
(pairs not returned score -inf) and the recalls come from the same functions, so on an
exact (FLAT) index both modes give the same figures. Hits are matched to the captions
file by content, not by record: an image hit by its id (sha256 of the bytes, so identical
files share it), a text hit by its normalised text (identical captions have identical
vectors). A score then lands in *every* column it stands for, which reproduces the direct
mode's counting of identical files or captions as separate candidates.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from clipsearch.client import Client, GatewayError, Hit, Target
from clipsearch.evaluation import KS, CaptionSet, first_hit_ranks, recall_at, relevant_sets
from clipsearch.usecases.common import normalise_text

T = TypeVar("T")
# Requests start at these sizes and shrink to what the gateway says its limits are.
UPLOAD_BATCH = 32
TEXT_BATCH = 256
QUERY_BATCH = 64
# Refusals that mean "fewer per request", with the detail that names the limit (if any).
SHRINK = {
    "too_many_files": "max_files_per_request",
    "too_many_texts": "max_texts_per_request",
    "too_many_queries": "max_batch_queries",
    "payload_too_large": "",
}
# Rank of a query whose relevant item was not among its hits: beyond every K.
MISSED = 1 << 30


def batched(items: Sequence[T], size: int, send: Callable[[Sequence[T]], list[Any]]) -> list[Any]:
    """``send`` the items ``size`` at a time, shrinking the size when the gateway says
    "too many" (to its stated limit, else by half); results concatenated in order."""
    out: list[Any] = []
    start = 0
    while start < len(items):
        chunk = items[start : start + size]
        try:
            out.extend(send(chunk))
        except GatewayError as exc:
            if exc.code not in SHRINK or len(chunk) == 1:
                raise
            limit = exc.limit(SHRINK[exc.code])
            size = limit if limit is not None and limit < len(chunk) else len(chunk) // 2
            continue
        start += len(chunk)
    return out


def upload(gw: Client, data: CaptionSet) -> list[str]:
    """Store the pictures and all their captions; returns each picture's id."""
    first: dict[int, int] = {}
    for c, i in enumerate(data.image_of):
        first.setdefault(i, c)

    def send(idx: Sequence[int]) -> list[Any]:
        files = [(data.images[i].name, data.images[i].read_bytes()) for i in idx]
        return list(gw.add_images(files, captions=[data.captions[first[i]] for i in idx]))

    items = batched(range(len(data.images)), UPLOAD_BATCH, send)
    ids: list[str] = []
    unlinked = [c for c, i in enumerate(data.image_of) if first[i] != c]
    for i, item in enumerate(items):
        if item["status"] == "failed":
            err = item.get("error") or {}
            code = str(err.get("code") or "")
            raise GatewayError(f"{data.images[i]}: {code}: {err.get('message')}", code=code)
        ids.append(str(item["id"]))
        if item["status"] == "duplicate" and not _has_caption(gw, ids[-1], data.captions[first[i]]):
            # A repeat in this file (a stored picture uploaded with a new caption is
            # `updated`: the caption was linked): this caption goes in as a text.
            unlinked.append(first[i])
    texts = list(dict.fromkeys(normalise_text(data.captions[c]) for c in unlinked))

    def send_texts(chunk: Sequence[str]) -> list[Any]:
        return list(gw.add_texts(chunk))

    batched(texts, TEXT_BATCH, send_texts)
    return ids


def _has_caption(gw: Client, image_id: str, caption: str) -> bool:
    """Whether the stored image already carries ``caption`` (a re-run: nothing to add)."""
    row = gw.get_image(image_id)
    stored = [str(row.get("caption") or ""), *row.get("captions", [])]
    return normalise_text(caption) in {normalise_text(c) for c in stored}


def search_once(
    gw: Client, queries: list[dict[str, str]], target: Target, top_k: int
) -> list[list[Hit]]:
    """Hit lists of all ``queries``, sent in batches the gateway accepts."""

    def send(chunk: Sequence[dict[str, str]]) -> list[Any]:
        body = gw.search_batch(chunk, target=target, top_k=top_k)
        return [r["hits"] for r in body["results"]]

    return batched(queries, QUERY_BATCH, send)


def search(
    gw: Client, queries: list[dict[str, str]], target: Target, top_k: int
) -> list[list[Hit]]:
    """:func:`search_once`, with ``top_k`` lowered to the gateway's maximum if it is over."""
    try:
        return search_once(gw, queries, target, top_k)
    except GatewayError as exc:
        cap = exc.limit("max_top_k")
        if exc.code != "top_k_too_large" or cap is None or cap >= top_k:
            raise
        print(
            f"clipsearch evaluate: {target}: top_k {top_k} is over the gateway's maximum, "
            f"using {cap}; other records in collection {gw.collection!r} may push relevant "
            "hits out and lower the figures (use a fresh --collection)",
            file=sys.stderr,
        )
        return search_once(gw, queries, target, cap)


def score_table(
    hits: Sequence[Sequence[Hit]], n_columns: int, columns_of: Callable[[Hit], list[int]]
) -> npt.NDArray[np.float32]:
    """[queries, columns] scores from the hits; what was not returned scores -inf."""
    sim = np.full((len(hits), n_columns), -np.inf, dtype=np.float32)
    for q, row in enumerate(hits):
        for hit in row:
            for col in columns_of(hit):
                # max: several records may stand for one column (a caption stored linked
                # and as a plain text); they have the same vector, so the best one counts.
                sim[q, col] = max(sim[q, col], float(hit["score"]))
    return sim


def ranks_of(
    sim: npt.NDArray[np.float32], relevant: Sequence[Sequence[int]]
) -> npt.NDArray[np.int64]:
    """First-hit ranks as in the direct mode; a query whose relevant items were all out of
    its hits ranks beyond every K (not among the few finite scores that were returned)."""
    ranks = first_hit_ranks(sim, relevant)
    for q, rel in enumerate(relevant):
        if not np.isfinite(sim[q, list(rel)]).any():
            ranks[q] = MISSED
    return ranks


def collection_counts(gw: Client) -> tuple[dict[str, Any], dict[str, int]]:
    """The gateway's encoder description and the collection's record counts."""
    stats = gw.stats()
    if not isinstance(stats, dict) or not isinstance(stats.get("encoder"), dict):
        raise GatewayError(
            f"{gw.url} does not look like a clipsearch gateway (/v1/stats)",
            url=f"{gw.url}/v1/stats",
        )
    group = stats.get("collections", {}).get(gw.collection, {})
    return stats["encoder"], {k: int(v) for k, v in group.get("counts", {}).items()}


def evaluate_url(
    data: CaptionSet,
    url: str,
    collection: str,
    timeout: float = 120.0,
    api_key: str | None = None,
) -> dict[str, Any]:
    """Upload ``data`` into ``collection`` of the gateway at ``url`` and compute both
    recalls from its search answers; same result keys as the direct mode, plus the url."""
    start = time.perf_counter()
    gw = Client(url, collection=collection, timeout=timeout, api_key=api_key)
    try:
        encoder, _ = collection_counts(gw)
        ids = upload(gw, data)
        _, counts = collection_counts(gw)
        # Records that are not from this file (earlier runs, other sets) can take hit slots:
        # ask for that many more so the top max(KS) of *this* set are all returned.
        texts = {normalise_text(c) for c in data.captions}
        extra_images = max(0, counts.get("images", 0) - len(set(ids)))
        extra_texts = max(0, counts.get("texts", 0) - len(texts))
        columns_of_id: dict[str, list[int]] = {}
        for i, image_id in enumerate(ids):
            columns_of_id.setdefault(image_id, []).append(i)
        columns_of_text: dict[str, list[int]] = {}
        for c, caption in enumerate(data.captions):
            columns_of_text.setdefault(normalise_text(caption), []).append(c)

        t2i_hits = search(
            gw, [{"text": c} for c in data.captions], "images", max(KS) + extra_images
        )
        i2t_hits = search(gw, [{"image_id": i} for i in ids], "texts", max(KS) + extra_texts)
    finally:
        gw.close()
    t2i = score_table(t2i_hits, len(ids), lambda h: columns_of_id.get(str(h["id"]), []))
    i2t = score_table(
        i2t_hits,
        len(data.captions),
        lambda h: columns_of_text.get(normalise_text(str(h.get("text") or "")), []),
    )
    image_of_caption, captions_of = relevant_sets(data.image_of, len(ids))
    return {
        "text_to_image": recall_at(ranks_of(t2i, image_of_caption)),
        "image_to_text": recall_at(ranks_of(i2t, captions_of)),
        "model": encoder.get("model_name"),
        "fingerprint": encoder.get("fingerprint"),
        "mode": encoder.get("mode"),
        "n_images": len(data.images),
        "n_captions": len(data.captions),
        "seconds": round(time.perf_counter() - start, 3),
        "url": gw.url,
        "collection": collection,
    }
