"""VectorStore semantics, the same suite on Milvus Lite, a real standalone server and the
in-memory fake store (`milvus_only` tests: Lite and standalone)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pytest

from clipsearch.store import milvus as milvus_mod
from clipsearch.store.milvus import MilvusStore
from clipsearch.store.protocol import (
    GroupMismatch,
    ImageRecord,
    InvalidStoreRequest,
    TextRecord,
    UnknownGroup,
    VectorStore,
)
from tests.store.conftest import DIM, FINGERPRINT, MODEL, StoreFactory

INJECTION = 's0" or id != "'


def vec(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)


def image(i: int, **kw: object) -> ImageRecord:
    return ImageRecord(id=f"s{i}", vector=vec(i), **kw)  # type: ignore[arg-type]


def ids(hits: list) -> set[str]:  # type: ignore[type-arg]
    return {h.id for h in hits}


def test_implements_protocol(store: MilvusStore, g: str) -> None:
    assert isinstance(store, VectorStore)
    store.health()


def test_upsert_twice_keeps_one_copy_and_updates(store: MilvusStore, g: str) -> None:
    rows = [image(i, caption="old") for i in range(20)]
    store.upsert_images(g, rows)
    store.upsert_images(g, [image(i, caption="new") for i in range(20)])
    assert store.count(g, "images") == 20
    got = store.get(g, "images", ["s3"])
    assert got[0]["caption"] == "new"


def test_get_existing_ids_and_vectors(store: MilvusStore, g: str) -> None:
    store.upsert_images(g, [image(i, width=10 + i, height=5, metadata={"k": i}) for i in range(5)])
    assert store.existing_ids(g, "images", ["s1", "s4", "nope", INJECTION]) == {"s1", "s4"}
    rows = store.get(g, "images", ["s4", "missing", "s1", "s4"], with_vectors=True)
    assert [r["id"] for r in rows] == ["s4", "s1"]
    assert rows[0]["width"] == 14
    assert rows[0]["metadata"] == {"k": 4}
    assert rows[0]["created_at"] > 1_600_000_000  # filled in when not given
    np.testing.assert_allclose(rows[0]["vector"], vec(4), rtol=1e-6)
    assert "vector" not in store.get(g, "images", ["s1"])[0]


def test_delete_and_texts_of_image(store: MilvusStore, g: str) -> None:
    store.upsert_images(g, [image(i) for i in range(3)])
    store.upsert_texts(
        g,
        [TextRecord(id=f"t{i}", vector=vec(100 + i), text=f"t{i}", image_id="s0") for i in range(3)]
        + [TextRecord(id="other", vector=vec(200), text="x", image_id="s1")],
    )
    assert store.delete(g, "images", ["s0", "absent"]) == 1
    assert store.delete_texts_of_image(g, "s0") == 3
    assert store.delete_texts_of_image(g, INJECTION) == 0
    assert store.existing_ids(g, "images", ["s0", "s1", "s2"]) == {"s1", "s2"}
    assert store.existing_ids(g, "texts", ["t0", "t1", "t2", "other"]) == {"other"}
    assert store.search(g, "images", vec(0), top_k=10)[0][0].id != "s0"


FILTER_ROWS = [
    {"color": "red", "n": 1, "ok": True, "tag": "plain"},
    {"color": "blue", "n": 2, "ok": False, "tag": INJECTION},
    {"color": "red", "n": 3, "ok": False, "tag": "back\\slash"},
    {"color": "green", "n": 2.5, "ok": True, "tag": 'quote"inside'},
    {"color": "red\nline", "n": 1, "ok": True, "tag": "\\"},
]


FILTER_CASES: list[tuple[dict[str, object], set[str]]] = [
    ({"color": "red"}, {"s0", "s2"}),
    ({"color": ["red", "green"]}, {"s0", "s2", "s3"}),
    ({"n": 2}, {"s1"}),
    ({"n": 2.5}, {"s3"}),
    ({"n": [1, 3]}, {"s0", "s2", "s4"}),
    ({"ok": True}, {"s0", "s3", "s4"}),
    ({"ok": False, "color": "red"}, {"s2"}),
    ({"tag": INJECTION}, {"s1"}),  # matches literally, only the row holding it
    ({"color": INJECTION}, set()),  # never widens the result
    ({"tag": "back\\slash"}, {"s2"}),
    ({"tag": "\\"}, {"s4"}),
    ({"tag": "back\\"}, set()),
    ({"tag": 'quote"inside'}, {"s3"}),
    ({"color": "red\nline"}, {"s4"}),
    ({"color": "red", "missing": "x"}, set()),
    ({}, {"s0", "s1", "s2", "s3", "s4"}),
]

BAD_FILTERS: list[dict[str, object]] = [
    {'a"] or id != "x" or metadata["b': "x"},
    {"a b": 1},
    {"1abc": 1},
    {"k": None},
    {"k": {"nested": 1}},
    {"k": []},
    {"k": float("nan")},
]


def test_filter_semantics(store: MilvusStore, g: str) -> None:
    # One group for all cases: creating collections is the slow part on a server.
    store.upsert_images(g, [image(i, metadata=m) for i, m in enumerate(FILTER_ROWS)])
    store.upsert_texts(
        g,
        [
            TextRecord(id=f"s{i}", vector=vec(i), text="t", metadata=m)
            for i, m in enumerate(FILTER_ROWS)
        ],
    )
    for flt, expected in FILTER_CASES:
        for target in ("images", "texts"):
            got = ids(store.search(g, target, vec(0), top_k=10, filter=flt)[0])
            assert got == expected, (target, flt)
    for flt in BAD_FILTERS:
        with pytest.raises(InvalidStoreRequest):
            store.search(g, "images", vec(0), top_k=3, filter=flt)


def test_group_mismatch_names_both_fingerprints(store: MilvusStore, g: str) -> None:
    store.ensure_group(g, dim=DIM, model_name=MODEL, fingerprint=FINGERPRINT)  # same: ok
    with pytest.raises(GroupMismatch) as info:
        store.ensure_group(g, dim=DIM, model_name="other", fingerprint="fp-bbbb")
    message = str(info.value)
    assert FINGERPRINT in message
    assert "fp-bbbb" in message
    assert "new collection group" in message
    with pytest.raises(GroupMismatch):
        store.ensure_group(g, dim=DIM * 2, model_name=MODEL, fingerprint=FINGERPRINT)


def test_groups_are_isolated(store: MilvusStore, g: str, new_group: Callable[..., str]) -> None:
    h = new_group(store)
    store.upsert_images(g, [image(i) for i in range(5)])
    store.upsert_images(h, [image(i) for i in range(100, 103)])
    assert {g, h} <= set(store.list_groups())
    assert store.count(g, "images") == 5
    assert store.count(h, "images") == 3
    assert ids(store.search(h, "images", vec(0), top_k=10)[0]) == {"s100", "s101", "s102"}
    assert store.existing_ids(h, "images", ["s0"]) == set()
    info = store.group_info(g)
    assert info.counts == {"images": 5, "texts": 0}
    assert (info.dim, info.fingerprint, info.model_name) == (DIM, FINGERPRINT, MODEL)
    assert info.index_type == "FLAT"
    assert info.index_params["metric_type"] == "COSINE"
    assert store.drop_group(h) is True
    assert store.drop_group(h) is False
    assert g in store.list_groups()
    assert h not in store.list_groups()


@pytest.mark.milvus_only
def test_hnsw_params_reported(make_store: StoreFactory, new_group: Callable[..., str]) -> None:
    store = make_store("HNSW")
    g = new_group(store)
    params = store.group_info(g).index_params
    assert params == {"M": 16, "efConstruction": 200, "metric_type": "COSINE", "ef_search": 64}


def test_unknown_and_invalid_groups(store: MilvusStore, g: str) -> None:
    with pytest.raises(UnknownGroup):
        store.search("nope", "images", vec(0), top_k=1)
    with pytest.raises(UnknownGroup):
        store.group_info("nope")
    for bad in ["", "a-b", "x" * 65, 'g" or "1']:
        with pytest.raises(InvalidStoreRequest):
            store.ensure_group(bad, dim=DIM, model_name=MODEL, fingerprint=FINGERPRINT)


def test_invalid_requests(store: MilvusStore, g: str) -> None:
    with pytest.raises(InvalidStoreRequest):
        store.search(g, "images", np.zeros((1, DIM + 1), np.float32), top_k=1)
    with pytest.raises(InvalidStoreRequest):  # one page: at most Milvus' 16,384 (deeper
        store.search(g, "images", vec(0), top_k=16_385)  # pages: tests/store/test_milvus_paging)
    with pytest.raises(InvalidStoreRequest):
        store.search(g, "images", vec(0), top_k=1_000, offset=999_001)
    with pytest.raises(InvalidStoreRequest):
        store.upsert_images(g, [ImageRecord(id="x" * 65, vector=vec(0))])
    with pytest.raises(InvalidStoreRequest):
        store.upsert_images(g, [ImageRecord(id="a", vector=vec(0), metadata={"x": {1, 2}})])
    with pytest.raises(InvalidStoreRequest):
        store.upsert_texts(g, [TextRecord(id="a", vector=vec(0)[:3], text="short")])
    assert store.count(g, "images") == 0
    assert store.count(g, "texts") == 0


@pytest.mark.milvus_only
def test_large_upserts_are_chunked(
    store: MilvusStore, g: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = store._client.upsert

    def counting(name: str, data: list[dict[str, object]], **kw: object) -> object:
        calls.append(len(data))
        return real(name, data, **kw)

    monkeypatch.setattr(milvus_mod, "RPC_BUDGET_BYTES", 4000)
    monkeypatch.setattr(store._client, "upsert", counting)
    store.upsert_images(g, [image(i, caption="c" * 200) for i in range(60)])
    assert len(calls) > 1
    assert sum(calls) == 60
    assert store.count(g, "images") == 60


def test_concurrent_writes_and_searches(store: MilvusStore, g: str) -> None:
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for i in range(5):
                store.upsert_images(g, [image(offset + i)])
                store.search(g, "images", vec(offset), top_k=3)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k * 100,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count(g, "images") == 20


# A Lite file only: parametrising `backend` here overrides the fixture's backend list.
@pytest.mark.parametrize("backend", ["lite"], indirect=True)
def test_lite_file_persists_across_reopen(make_store: StoreFactory, lite_path: str) -> None:
    g = "g"
    first = make_store("FLAT", prefix="persist", uri_override=lite_path)
    first.ensure_group(g, dim=DIM, model_name=MODEL, fingerprint=FINGERPRINT)
    first.upsert_images(g, [image(i, caption=f"c{i}") for i in range(7)])
    first.close()

    again = make_store("HNSW", prefix="persist", uri_override=lite_path)
    again.ensure_group(g, dim=DIM, model_name=MODEL, fingerprint=FINGERPRINT)
    assert again.count(g, "images") == 7
    assert again.get(g, "images", ["s6"])[0]["caption"] == "c6"
    assert again.group_info(g).index_type == "FLAT"  # the group keeps its own index
    assert again.search(g, "images", vec(3), top_k=1)[0][0].id == "s3"
    with pytest.raises(GroupMismatch):
        again.ensure_group(g, dim=DIM, model_name=MODEL, fingerprint="fp-other")


@pytest.mark.milvus_only
def test_closed_store_reports_unhealthy(make_store: StoreFactory) -> None:
    s = make_store("FLAT", prefix="closed")  # its own client, not the session's
    s.health()
    s.close()
    with pytest.raises(Exception):  # noqa: B017, PT011 - any error, not a silent success
        s.health()
