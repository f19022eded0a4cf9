"""The similarity use-case's arithmetic and its encoder path: CLIP's cosine and softmax
(logit scale 100, as clip-server's rank), stable at any cosine, and an encoder without a
pixel path (service mode: clip-server decodes the bytes) gets the picture's bytes."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest
from tests.unit.usecase_fakes import FakeEncoder, FakeStore, _vec, picture

from clipsearch.core.config import Settings
from clipsearch.core.errors import InvalidRequest
from clipsearch.usecases.collections import Collections
from clipsearch.usecases.common import image_id_of
from clipsearch.usecases.search import Query, SearchService
from clipsearch.usecases.similarity import LOGIT_SCALE, SimilarityService, clip_scores


def test_clip_scores_by_hand() -> None:
    q = np.array([1.0, 0.0], dtype=np.float32)
    c = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32)
    cosine, softmax = clip_scores(q, c)
    assert cosine.tolist() == pytest.approx([1.0, 0.0, 0.6])
    e = [math.exp(100 * x) for x in (1.0, 0.0, 0.6)]
    assert softmax.tolist() == pytest.approx([x / sum(e) for x in e])
    assert LOGIT_SCALE == 100.0
    # Equal cosines share the mass evenly; no overflow at the extremes.
    _, even = clip_scores(q, np.array([[1.0, 0.0]] * 4, dtype=np.float32))
    assert even.tolist() == pytest.approx([0.25] * 4)
    _, extreme = clip_scores(q, np.array([[1.0, 0.0], [-1.0, 0.0]], dtype=np.float32))
    assert np.isfinite(extreme).all()
    assert extreme[0] == pytest.approx(1.0)


def _service(**limits: object) -> tuple[SimilarityService, FakeEncoder]:
    settings = Settings(_env_file=None, **limits)  # type: ignore[arg-type]
    encoder, store = FakeEncoder(), FakeStore()
    cols = Collections(store, encoder)
    search = SearchService(settings, encoder, store, cols)
    return SimilarityService(settings, encoder, cols, search), encoder


def test_bytes_go_to_the_encoder_and_texts_in_one_call() -> None:
    service, encoder = _service()
    data = picture(5)
    result = asyncio.run(service.score("default", Query(image=data), ["a  dog", "a cat"]))
    assert encoder.calls == [("text", 2), ("image", 1)]  # one call per kind
    assert result.image_id == image_id_of(data)
    assert [s.text for s in result.scores] == ["a dog", "a cat"]  # normalised, in order
    want = float(_vec(data) @ _vec(b"a dog"))
    assert result.scores[0].cosine == pytest.approx(want, abs=1e-6)
    assert sum(s.softmax for s in result.scores) == pytest.approx(1.0)


def test_everything_is_checked_before_the_encoder_runs() -> None:
    service, encoder = _service(max_similarity_texts=2)
    data = picture(6)
    for texts, code in [
        ([], "no_texts"),
        (["a", "b", "c"], "too_many_texts"),
        ([""], "empty_text"),
    ]:
        with pytest.raises(InvalidRequest) as info:
            asyncio.run(service.score("default", Query(image=data), texts))
        assert info.value.code == code
    with pytest.raises(InvalidRequest) as info:
        asyncio.run(service.score("default", Query(image=b"not a picture"), ["a"]))
    assert info.value.code == "invalid_image"
    with pytest.raises(InvalidRequest) as info:
        asyncio.run(service.score("default", Query(text="a query"), ["a"]))
    assert info.value.code == "invalid_query"
    assert encoder.calls == []


def test_similarity_counts_as_a_search_against_the_caps() -> None:
    from clipsearch.api.json_body import MULTIPART_PATHS
    from clipsearch.api.overload import request_class

    assert request_class("POST", "/v1/similarity") == "search"
    assert "/v1/similarity" in MULTIPART_PATHS  # an upload may be as large as a search's
