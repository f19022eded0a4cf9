"""Use-case logic over in-memory fakes: ordering, duplicates, partial failure, batching."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from tests.unit.usecase_fakes import FakeBlobs, FakeEncoder, FakeStore, picture

from clipsearch.core.config import Settings
from clipsearch.core.errors import (
    CollectionMismatch,
    InvalidRequest,
    NotFoundError,
    UnknownCollection,
)
from clipsearch.usecases.collections import Collections
from clipsearch.usecases.common import image_id_of, text_id_of
from clipsearch.usecases.images import ImageInput, ImageService
from clipsearch.usecases.search import Query, SearchOptions, SearchService
from clipsearch.usecases.texts import TextInput, TextService


class World:
    def __init__(self, **limits: Any) -> None:
        self.settings = Settings(**limits)
        self.encoder = FakeEncoder()
        self.store = FakeStore()
        self.blobs = FakeBlobs()
        cols = Collections(self.store, self.encoder)
        self.images = ImageService(self.settings, self.encoder, self.store, self.blobs, cols)
        self.texts = TextService(self.settings, self.encoder, self.store, cols)
        self.search = SearchService(self.settings, self.encoder, self.store, cols)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_store_images_statuses_and_linked_caption() -> None:
    w = World()
    a, b = picture(1), picture(2)
    items = [
        ImageInput(a, "a.png", caption="  a red   circle "),
        ImageInput(b"not an image", "x.txt"),
        ImageInput(a, "a-again.png"),
        ImageInput(b, "b.png", metadata={"k": "v"}),
    ]
    res = run(w.images.store_images("default", items))
    assert [r.status for r in res] == ["stored", "failed", "duplicate", "stored"]
    assert res[1].error is not None
    assert res[1].error.code == "invalid_image"
    texts = w.store.data[("default", "texts")]
    tid = text_id_of("a red circle", res[0].id or "")
    assert list(texts) == [tid]
    assert texts[tid]["text"] == "a red circle"
    assert texts[tid]["image_id"] == res[0].id
    assert w.store.data[("default", "images")][res[3].id or ""]["metadata"] == {"k": "v"}
    assert set(w.blobs.blobs) == {res[0].id, res[3].id}
    # One encoder call for all images, one for all captions.
    assert w.encoder.calls == [("image", 2), ("text", 1)]
    again = run(w.images.store_images("default", [ImageInput(b, "b2.png")]))
    assert again[0].status == "duplicate"


def test_vector_write_failure_fails_only_that_item_and_undoes_it() -> None:
    w = World()
    good, bad = picture(3), picture(4)
    w.store.fail_upsert_ids = {image_id_of(bad)}
    res = run(
        w.images.store_images(
            "default",
            [ImageInput(good, "g.png", caption="good"), ImageInput(bad, "b.png", caption="bad")],
        )
    )
    assert [r.status for r in res] == ["stored", "failed"]
    assert res[1].error is not None
    assert res[1].error.code == "store_write_failed"
    # Nothing of the failed item remains: no vector, no caption text, no blob.
    assert set(w.store.data[("default", "images")]) == {image_id_of(good)}
    assert [r["text"] for r in w.store.data[("default", "texts")].values()] == ["good"]
    assert set(w.blobs.blobs) == {image_id_of(good)}


def test_blob_failure_writes_no_vector() -> None:
    w = World()
    w.blobs.fail = True
    res = run(w.images.store_images("default", [ImageInput(picture(5), "a.png", caption="c")]))
    assert res[0].status == "failed"
    assert res[0].error is not None
    assert res[0].error.code == "blob_write_failed"
    assert w.store.data[("default", "images")] == {}
    assert w.store.data[("default", "texts")] == {}


def test_oversized_and_too_many_files() -> None:
    w = World(max_upload_bytes=2048, max_files_per_request=2)
    big = b"\x89PNG" + b"0" * 4096
    res = run(
        w.images.store_images(
            "default", [ImageInput(big, "big.png"), ImageInput(picture(6), "s.png")]
        )
    )
    assert res[0].status == "failed"
    assert res[0].error is not None
    assert res[0].error.code == "file_too_large"
    assert res[1].status == "stored"
    with pytest.raises(InvalidRequest) as exc:
        run(w.images.store_images("default", [ImageInput(picture(i), f"{i}") for i in range(3)]))
    assert exc.value.code == "too_many_files"


def test_texts_duplicates_and_whole_request_validation() -> None:
    w = World(max_text_chars=20)
    res = run(
        w.texts.store_texts("default", [TextInput("a cat"), TextInput("a  cat "), TextInput("dog")])
    )
    assert [r.status for r in res] == ["stored", "duplicate", "stored"]
    assert res[0].id == res[1].id == text_id_of("a cat")
    with pytest.raises(InvalidRequest) as exc:
        run(w.texts.store_texts("default", [TextInput("fine"), TextInput("x" * 21)]))
    assert exc.value.code == "text_too_long"
    assert len(w.store.data[("default", "texts")]) == 2  # nothing of the refused request


def test_batch_search_one_call_per_kind_and_query_order() -> None:
    w = World()
    imgs = [picture(10 + i) for i in range(4)]
    stored = run(
        w.images.store_images("default", [ImageInput(d, f"{i}.png") for i, d in enumerate(imgs)])
    )
    w.encoder.calls.clear()
    queries = [
        Query(text="one"),
        Query(image_id=stored[2].id),
        Query(image=imgs[1]),
        Query(text="two"),
        Query(image=imgs[3]),
    ]
    out = run(w.search.search("default", queries, SearchOptions(top_k=2)))
    assert w.encoder.calls == [("text", 2), ("image", 2)]  # the image_id query is not encoded
    assert w.store.search_calls == [5]
    assert len(out.hits) == 5
    # An image finds itself first, whether given by id or by bytes.
    assert out.hits[1][0].id == stored[2].id
    assert out.hits[2][0].id == stored[1].id
    assert out.hits[4][0].id == stored[3].id
    singles = [
        run(w.search.search("default", [q], SearchOptions(top_k=2))).hits[0] for q in queries
    ]
    assert [[h.id for h in hs] for hs in singles] == [[h.id for h in hs] for hs in out.hits]


def test_search_limits_and_unknown_things() -> None:
    w = World(max_top_k=10, max_search_depth=30, max_batch_queries=2)
    run(w.texts.store_texts("default", [TextInput("hello")]))
    opts = SearchOptions(target="texts", top_k=5)
    with pytest.raises(InvalidRequest) as exc:
        run(w.search.search("default", [Query(text="x")], SearchOptions(top_k=11)))
    assert exc.value.code == "top_k_too_large"
    # top_k + offset past max_top_k is a page of a deep search: bounded by its own setting.
    run(w.search.search("default", [Query(text="x")], SearchOptions(top_k=8, offset=22)))
    w.store.search_calls.clear()
    with pytest.raises(InvalidRequest) as exc:
        run(w.search.search("default", [Query(text="x")], SearchOptions(top_k=8, offset=23)))
    assert (exc.value.code, exc.value.details["max_search_depth"]) == ("search_too_deep", 30)
    with pytest.raises(InvalidRequest) as exc:
        run(w.search.search("default", [Query(text="   ")], opts))
    assert exc.value.code == "empty_text"
    with pytest.raises(InvalidRequest) as exc:
        run(w.search.search("default", [Query(text="a")] * 3, opts))
    assert exc.value.code == "too_many_queries"
    with pytest.raises(UnknownCollection):
        run(w.search.search("nope", [Query(text="a")], opts))
    with pytest.raises(NotFoundError) as nf:
        run(w.search.search("default", [Query(image_id="f" * 64)], opts))
    assert nf.value.code == "image_not_found"
    with pytest.raises(InvalidRequest) as exc:
        run(w.search.search("default", [Query(text="a")], SearchOptions(filter={"a b": 1})))
    assert exc.value.code == "invalid_filter"
    assert w.store.search_calls == []  # every refusal came before the store was searched


def test_collection_mismatch_on_write_and_read() -> None:
    w = World()
    run(w.texts.store_texts("other", [TextInput("x")]))
    enc2 = FakeEncoder(fingerprint="fp2")
    cols = Collections(w.store, enc2)
    with pytest.raises(CollectionMismatch, match="new collection"):
        run(cols.for_write("other"))
    with pytest.raises(CollectionMismatch):
        run(cols.for_read("other"))
    with pytest.raises(InvalidRequest):
        run(cols.for_read("bad name!"))


def test_delete_image_cascades() -> None:
    w = World()
    res = run(w.images.store_images("default", [ImageInput(picture(20), "a.png", caption="cap")]))
    run(w.texts.store_texts("default", [TextInput("unrelated")]))
    image_id = res[0].id or ""
    assert run(w.images.delete_image("default", image_id)) == 1
    assert w.store.data[("default", "images")] == {}
    assert [r["text"] for r in w.store.data[("default", "texts")].values()] == ["unrelated"]
    assert w.blobs.blobs == {}
    with pytest.raises(NotFoundError):
        run(w.images.delete_image("default", image_id))


def test_stored_vector_is_reused_exactly() -> None:
    w = World()
    res = run(w.images.store_images("default", [ImageInput(picture(30), "a.png")]))
    out = run(w.search.search("default", [Query(image_id=res[0].id)], SearchOptions(top_k=1)))
    assert out.hits[0][0].score == pytest.approx(1.0, abs=1e-5)
    assert np.isclose(out.took_ms, out.took_ms)  # a number, not NaN
