"""clip-server's HTTP wire format: request bodies and strict reading of the answers.

Pure functions, no I/O: :mod:`clipsearch.encoder.service` adds transport, retries and the
circuit breaker. Every malformed answer raises
:class:`~clipsearch.encoder.resilience.EncoderProtocolError`, never a silent default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from clipsearch.encoder.protocol import Vectors
from clipsearch.encoder.resilience import EncoderProtocolError

Doc = dict[str, Any]


@dataclass(frozen=True)
class RankScore:
    """One candidate scored against a query by clip-server's ``/rank``."""

    index: int  # position in the candidates given to ``rank``
    score: float  # softmax over the candidates (clip_score)
    cosine: float  # raw cosine similarity (clip_score_cosine)


def request(endpoint: str, docs: list[Doc]) -> dict[str, Any]:
    """A ``/post`` body; ``drop_image_content`` keeps the server from echoing the blobs."""
    return {"execEndpoint": endpoint, "data": docs, "parameters": {"drop_image_content": True}}


def parse_response(resp: httpx.Response) -> dict[str, Any]:
    """The JSON body of a 200 answer whose jina status is success."""
    if resp.status_code != 200:
        raise EncoderProtocolError(f"clip-server HTTP {resp.status_code}: {resp.text[:300]}")
    try:
        body = resp.json()
    except ValueError as exc:
        raise EncoderProtocolError(f"clip-server answered non-JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise EncoderProtocolError("clip-server answered a non-object")
    # An executor exception comes back as HTTP 200 with header.status.code = 1 (ERROR).
    status = (body.get("header") or {}).get("status") or {}
    if status.get("code") not in (None, 0, "SUCCESS"):
        raise EncoderProtocolError(
            f"clip-server error: {status.get('description') or status.get('code')}"
        )
    return body


def l2_normalise(x: np.ndarray[Any, Any]) -> Vectors:
    v = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    if np.any(norms == 0) or not np.all(np.isfinite(norms)):
        raise EncoderProtocolError("clip-server returned a zero or non-finite vector")
    out: Vectors = (v / norms).astype(np.float32)
    return out


def embeddings(body: dict[str, Any], expected: int) -> Vectors:
    """The [N,D] unit vectors of an ``/encode`` answer for ``expected`` inputs, in order."""
    out = body.get("data")
    if not isinstance(out, list) or len(out) != expected:
        got = len(out) if isinstance(out, list) else type(out).__name__
        raise EncoderProtocolError(f"clip-server returned {got} docs for {expected} inputs")
    rows: list[list[float]] = []
    for i, doc in enumerate(out):
        emb = doc.get("embedding") if isinstance(doc, dict) else None
        if not isinstance(emb, list) or not emb:
            # clip-server answers 200 with embedding null for a doc it could not read.
            raise EncoderProtocolError(f"clip-server returned no embedding for input {i}")
        rows.append(emb)
    try:
        vecs = np.asarray(rows, dtype=np.float32)
    except ValueError as exc:  # ragged rows
        raise EncoderProtocolError(f"clip-server returned malformed vectors: {exc}") from exc
    return l2_normalise(vecs)


def rank_request(text: str, matches: list[Doc]) -> dict[str, Any]:
    """A ``/rank`` body; each match carries an id ``c<i>`` because the answer is re-sorted."""
    tagged = [{"id": f"c{i}", **m} for i, m in enumerate(matches)]
    return request("/rank", [{"text": text, "matches": tagged}])


def _score(match: dict[str, Any], name: str) -> float:
    value = match["scores"][name]["value"]
    # docarray serialises a score of exactly 0.0 as null (seen for softmax underflow).
    return 0.0 if value is None else float(value)


def rank_scores(body: dict[str, Any], expected: int) -> list[RankScore]:
    """Scores of a ``/rank`` answer, best first; every candidate must be scored once."""
    try:
        returned = body["data"][0]["matches"]
        scores = [
            RankScore(
                index=int(str(m["id"])[1:]),
                score=_score(m, "clip_score"),
                cosine=_score(m, "clip_score_cosine"),
            )
            for m in returned
        ]
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise EncoderProtocolError(f"clip-server /rank answer not understood: {exc}") from exc
    if sorted(s.index for s in scores) != list(range(expected)):
        raise EncoderProtocolError("clip-server /rank did not score every candidate")
    return sorted(scores, key=lambda s: s.score, reverse=True)
