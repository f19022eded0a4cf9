"""The rerank use-case's two paths: a text query goes to the ranker (clip-server's /rank in
service mode) with the candidates themselves, image bytes or texts, and takes its scores
and order; image queries, and any query when the ranker fails, are scored from the
search's cosines with the similarity use-case's softmax."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from tests.unit.usecase_fakes import FakeBlobs

from clipsearch.encoder.protocol import EncoderError
from clipsearch.store.protocol import Hit
from clipsearch.usecases.rerank import RerankService
from clipsearch.usecases.search import Query
from clipsearch.usecases.similarity import clip_softmax


@dataclass(frozen=True)
class Score:
    index: int
    score: float
    cosine: float


class Ranker:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, list[str | bytes]]] = []
        self.fail = fail

    async def rank(self, text: str, candidates: Sequence[str | bytes]) -> Sequence[Score]:
        self.calls.append((text, list(candidates)))
        if self.fail:
            raise EncoderError("clip-server is down")
        # The last candidate is the best: the order must follow the ranker, not the search.
        n = len(candidates)
        return [Score(i, (i + 1) / (n * (n + 1) / 2), 0.1 * i) for i in reversed(range(n))]


def _blobs(*ids: str) -> FakeBlobs:
    blobs = FakeBlobs()
    for i in ids:
        blobs.put(i, f"bytes of {i}".encode(), "image/png")
    return blobs


PAGE = [Hit("a", 0.30, {}), Hit("b", 0.29, {}), Hit("c", 0.10, {})]
TEXTS = [Hit("t1", 0.5, {"text": "one"}), Hit("t2", 0.4, {"text": "two"})]


def test_text_queries_go_to_the_ranker_with_the_candidates() -> None:
    ranker = Ranker()
    service = RerankService(_blobs("a", "b", "c"), ranker)
    (page,) = asyncio.run(service.rerank([Query(text="a dog")], "images", [PAGE]))
    assert ranker.calls == [("a dog", [b"bytes of a", b"bytes of b", b"bytes of c"])]
    assert [r.hit.id for r in page] == ["c", "b", "a"]  # the ranker's order
    assert [r.by for r in page] == ["clip-server"] * 3
    assert page[0].cosine == pytest.approx(0.2)
    (texts,) = asyncio.run(service.rerank([Query(text="x")], "texts", [TEXTS]))
    assert ranker.calls[-1] == ("x", ["one", "two"])
    assert [r.hit.id for r in texts] == ["t2", "t1"]


def test_image_queries_and_ranker_failures_are_scored_locally() -> None:
    ranker = Ranker(fail=True)
    service = RerankService(_blobs("a", "b", "c"), ranker)
    queries = [Query(image=b"png"), Query(text="a dog")]
    pages = asyncio.run(service.rerank(queries, "images", [PAGE, PAGE]))
    assert len(ranker.calls) == 1  # the text query tried; the image query never does
    want = clip_softmax([h.score for h in PAGE])
    for page in pages:
        assert [r.by for r in page] == ["local"] * 3
        assert [r.hit.id for r in page] == ["a", "b", "c"]
        assert [r.softmax for r in page] == pytest.approx(list(want))
        assert [r.cosine for r in page] == [h.score for h in PAGE]
    assert asyncio.run(service.rerank([Query(text="x")], "images", [[]])) == [[]]


def test_a_missing_blob_falls_back_to_local_scores() -> None:
    service = RerankService(_blobs("a"), Ranker())  # b and c have no file
    (page,) = asyncio.run(service.rerank([Query(text="a dog")], "images", [PAGE]))
    assert [r.by for r in page] == ["local"] * 3
