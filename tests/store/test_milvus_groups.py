"""Group lifecycle on Lite, standalone and the fake: per-group index specs, and a
migration's shadow pair (writes by model fingerprint, deletes to both, the atomic switch,
the old pair retired then dropped, abandon), and the ``auto`` search threshold in the meta."""

from __future__ import annotations

import uuid
from dataclasses import replace

import numpy as np
import pytest

from clipsearch.store import milvus_groups as mg
from clipsearch.store import milvus_schema as ms
from clipsearch.store.milvus import MilvusStore
from clipsearch.store.protocol import (
    GroupMismatch,
    ImageRecord,
    IndexSpec,
    InvalidStoreRequest,
    TextRecord,
    UnknownGroup,
)
from tests.store.conftest import DIM, FINGERPRINT, MODEL, StoreFactory

NEW_FP = "fp-bbbb"
NEW_DIM = 8


def vec(seed: int, dim: int = DIM) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


def images(n: int, dim: int = DIM, seed: int = 0) -> list[ImageRecord]:
    return [ImageRecord(id=f"i{k}", vector=vec(seed + k, dim), caption=f"c{k}") for k in range(n)]


def test_pair_names_never_collide_across_groups() -> None:
    names: set[str] = set()
    for group in ("a", "a_images", "a_images_v1", "a_v1", "_a", "a__"):
        for gen in (0, 1, 2):
            pair = mg.pair_names("p", group, gen)
            assert not names & set(pair.values()), (group, gen)
            names |= set(pair.values())


@pytest.mark.parametrize(
    "spec",
    [
        IndexSpec("IVF"),
        IndexSpec("HNSW", {"M": 1}),
        IndexSpec("HNSW", {"nlist": 4}),
        IndexSpec("FLAT", {"M": 8}),
        IndexSpec("HNSW", {"M": True}),
    ],
)
def test_check_index_refuses_bad_specs(spec: IndexSpec) -> None:
    with pytest.raises(InvalidStoreRequest):
        mg.check_index(spec, {"M": 16, "efConstruction": 200})


def test_check_index_fills_hnsw_defaults() -> None:
    got = mg.check_index(IndexSpec("hnsw", {"M": 8}), {"M": 16, "efConstruction": 200})
    assert got == IndexSpec("HNSW", {"M": 8, "efConstruction": 200})


@pytest.mark.milvus_only
def test_a_group_keeps_its_own_index_spec(make_store: StoreFactory) -> None:
    store = make_store("FLAT")
    name = f"ix_{uuid.uuid4().hex[:10]}"
    spec = IndexSpec("HNSW", {"M": 8, "efConstruction": 64})
    store.ensure_group(name, dim=DIM, model_name=MODEL, fingerprint=FINGERPRINT, index=spec)
    try:
        info = store.group_info(name)
        assert info.index_type == "HNSW"
        assert info.index_params["M"] == 8
        assert info.index_params["efConstruction"] == 64
        store.upsert_images(name, images(5))
        hits = store.search(name, "images", vec(2)[None, :], top_k=1)
        assert hits[0][0].id == "i2"
    finally:
        store.drop_group(name)


def test_shadow_pair_switch_and_retire(store: MilvusStore, g: str) -> None:
    store.upsert_images(g, images(4))
    store.upsert_texts(g, [TextRecord(id="t1", vector=vec(9), text="x", image_id="i1")])
    store.begin_shadow(
        g, dim=NEW_DIM, model_name="new", fingerprint=NEW_FP, index=IndexSpec("FLAT")
    )
    # Idempotent for the same model; another model while one runs is refused.
    store.begin_shadow(
        g, dim=NEW_DIM, model_name="new", fingerprint=NEW_FP, index=IndexSpec("FLAT")
    )
    with pytest.raises(GroupMismatch):
        store.begin_shadow(g, dim=DIM, model_name="x", fingerprint="fp-x", index=IndexSpec("FLAT"))
    info = store.group_info(g)
    assert info.shadow is not None
    assert info.shadow.fingerprint == NEW_FP
    assert info.fingerprint == FINGERPRINT
    # Writes go to the pair of their model; an unknown model is refused.
    store.upsert_images(g, images(4, NEW_DIM, seed=100), fingerprint=NEW_FP)
    with pytest.raises(GroupMismatch):
        store.upsert_images(g, images(1), fingerprint="fp-none")
    with pytest.raises(InvalidStoreRequest):  # vectors of the wrong size for the shadow
        store.upsert_images(g, images(1), fingerprint=NEW_FP)
    assert sorted(store.scan_ids(g, "images", shadow=True)) == ["i0", "i1", "i2", "i3"]
    assert sorted(store.scan_ids(g, "images")) == ["i0", "i1", "i2", "i3"]
    # Searches stay on the live pair; a delete reaches both pairs.
    assert store.search(g, "images", vec(1)[None, :], top_k=1)[0][0].id == "i1"
    assert store.delete(g, "images", ["i3"]) == 1
    assert "i3" not in store.scan_ids(g, "images", shadow=True)
    with pytest.raises(GroupMismatch):
        store.search(g, "images", vec(1)[None, :], top_k=1, fingerprint=NEW_FP)
    store.switch_shadow(g)
    info = store.group_info(g)
    assert info.fingerprint == NEW_FP
    assert info.dim == NEW_DIM
    assert info.shadow is None
    assert info.counts == {"images": 3, "texts": 0}
    hits = store.search(g, "images", vec(101, NEW_DIM)[None, :], top_k=1, fingerprint=NEW_FP)
    assert hits[0][0].id == "i1"
    with pytest.raises(GroupMismatch):  # a write encoded for the old pair, after the switch
        store.upsert_images(g, images(1), fingerprint=FINGERPRINT)
    assert store.drop_retired(g) in (0, 2)  # the fake keeps no collections
    assert store.group_info(g).retired == []


def test_drop_shadow_abandons_a_migration(store: MilvusStore, g: str) -> None:
    store.upsert_images(g, images(2))
    store.begin_shadow(g, dim=DIM, model_name="new", fingerprint=NEW_FP, index=IndexSpec("FLAT"))
    store.upsert_images(g, images(2, seed=50), fingerprint=NEW_FP)
    store.drop_shadow(g)
    info = store.group_info(g)
    assert info.shadow is None
    assert info.fingerprint == FINGERPRINT
    assert info.counts["images"] == 2
    with pytest.raises(GroupMismatch):
        store.upsert_images(g, images(1), fingerprint=NEW_FP)
    store.drop_shadow(g)  # nothing to drop: a no-op
    # A new migration may start again afterwards.
    store.begin_shadow(g, dim=DIM, model_name="new", fingerprint=NEW_FP, index=IndexSpec("FLAT"))
    assert store.scan_ids(g, "images", shadow=True) == []
    assert store.drop_group(g)


def test_auto_threshold_is_kept_in_the_meta_until_the_model_changes(
    store: MilvusStore, g: str
) -> None:
    assert store.group_info(g).min_score_auto is None
    store.set_threshold(g, 0.25)
    assert store.group_info(g, with_counts=False).min_score_auto == pytest.approx(0.25)
    with pytest.raises(InvalidStoreRequest):
        store.set_threshold(g, 1.5)
    with pytest.raises(UnknownGroup):
        store.set_threshold(f"nope_{uuid.uuid4().hex[:8]}", 0.1)
    store.begin_shadow(
        g, dim=NEW_DIM, model_name="new", fingerprint=NEW_FP, index=IndexSpec("FLAT")
    )
    assert store.group_info(g).min_score_auto == pytest.approx(0.25)  # still the live model
    store.switch_shadow(g)
    assert store.group_info(g).min_score_auto is None  # another model: another scale
    store.set_threshold(g, -0.5)
    assert store.group_info(g).min_score_auto == pytest.approx(-0.5)
    store.set_threshold(g, None)
    assert store.group_info(g).min_score_auto is None


def test_a_switch_to_the_same_model_keeps_the_threshold() -> None:
    live = mg.new_meta(DIM, MODEL, FINGERPRINT, IndexSpec("FLAT"))
    meta = mg.with_threshold(live, 0.3)
    same = mg.new_meta(DIM, MODEL, FINGERPRINT, IndexSpec("HNSW"), 1)
    other = mg.new_meta(DIM, "new", NEW_FP, IndexSpec("FLAT"), 1)
    assert mg.switched(replace(meta, shadow=same), "p", "g").min_score_auto == 0.3
    assert mg.switched(replace(meta, shadow=other), "p", "g").min_score_auto is None
    assert ms.GroupMeta.from_json(meta.to_json()).min_score_auto == 0.3
