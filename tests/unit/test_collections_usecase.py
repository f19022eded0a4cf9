"""Collections over fakes: dropping one cancels its jobs and keeps shared blobs; writes
during a migration land in both pairs, each encoded by its own model."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.unit.usecase_fakes import FakeBlobs, FakeEncoder, FakeStore, picture

from clipsearch.core.config import Settings
from clipsearch.encoder.registry import ExtraModel, ModelRegistry
from clipsearch.jobs.runner import JobManager
from clipsearch.jobs.store import NewItem
from clipsearch.store.protocol import IndexSpec
from clipsearch.usecases.collections import Collections
from clipsearch.usecases.image_patch import ImagePatch
from clipsearch.usecases.images import ImageInput, ImageService
from clipsearch.usecases.texts import TextInput, TextService


def test_drop_cancels_jobs_and_keeps_blobs_other_collections_use(tmp_path: Path) -> None:
    async def main() -> None:
        store, blobs, enc = FakeStore(), FakeBlobs(), FakeEncoder()
        cols = Collections(store, enc)
        settings = Settings(_env_file=None, data_dir=tmp_path)
        images = ImageService(settings, enc, store, blobs, cols)
        jobs = JobManager(settings, enc, store, blobs, cols)  # not started: jobs stay queued
        shared, own = picture(1), picture(2)
        await images.store_images("gone", [ImageInput(shared, "a"), ImageInput(own, "b")])
        await images.store_images("kept", [ImageInput(shared, "a")])
        job, _ = await jobs.submit("gone", [NewItem("http://example.com/x.png", "url")])
        other, _ = await jobs.submit("kept", [NewItem("http://example.com/y.png", "url")])
        result = await cols.drop("gone", blobs, jobs.cancel_collection)
        assert result == {"jobs_cancelled": 1, "images": 2, "blobs_removed": 1}
        assert store.list_groups() == ["kept"]
        assert (await jobs.get(job.id)).status == "cancelled"  # type: ignore[union-attr]
        assert (await jobs.get(other.id)).status == "queued"  # type: ignore[union-attr]
        assert len(blobs.blobs) == 1
        await jobs.stop()

    asyncio.run(main())


def test_writes_during_a_migration_go_to_both_pairs_each_with_its_model(tmp_path: Path) -> None:
    async def main() -> None:
        store, blobs = FakeStore(), FakeBlobs()
        old, new = FakeEncoder("fp-old"), FakeEncoder("fp-new")
        models = ModelRegistry(old, [ExtraModel(Path("/m/new"))], lambda _: new)
        cols = Collections(store, old, models)
        settings = Settings(_env_file=None, data_dir=tmp_path)
        images = ImageService(settings, old, store, blobs, cols)
        texts = TextService(settings, old, store, cols)
        await texts.store_texts("c", [TextInput("before")])
        store.begin_shadow("c", dim=new.dim, model_name="n", fingerprint="fp-new",
                           index=IndexSpec("FLAT"))  # fmt: skip
        cols.forget("c")
        await texts.store_texts("c", [TextInput("during")])
        await images.store_images("c", [ImageInput(picture(3), "p", caption="cap")])
        live, shadow = store.data, store.shadow_data
        assert {r["text"] for r in live[("c", "texts")].values()} == {"before", "during", "cap"}
        assert {r["text"] for r in shadow[("c", "texts")].values()} == {"during", "cap"}
        assert len(shadow[("c", "images")]) == 1
        # Each pair was encoded by its own model (the fakes count their calls).
        assert ("text", 1) in new.calls
        assert ("image", 1) in new.calls

    asyncio.run(main())


def test_changes_during_a_migration_reach_the_shadow_pair(tmp_path: Path) -> None:
    """PATCH of a text and of an image while a migration runs: the shadow pair gets the
    new metadata and captions too (else the switch would bring back the old ones)."""

    async def main() -> None:
        store, blobs = FakeStore(), FakeBlobs()
        old, new = FakeEncoder("fp-old"), FakeEncoder("fp-new")
        models = ModelRegistry(old, [ExtraModel(Path("/m/new"))], lambda _: new)
        cols = Collections(store, old, models)
        settings = Settings(_env_file=None, data_dir=tmp_path)
        images = ImageService(settings, old, store, blobs, cols)
        texts = TextService(settings, old, store, cols)
        [t] = await texts.store_texts("c", [TextInput("a note")])
        [p] = await images.store_images("c", [ImageInput(picture(4), "p", caption="cap")])
        assert t.id is not None
        assert p.id is not None
        store.begin_shadow("c", dim=new.dim, model_name="n", fingerprint="fp-new",
                           index=IndexSpec("FLAT"))  # fmt: skip
        cols.forget("c")
        await texts.update_text("c", t.id, metadata={"k": "v"})
        await images.update_image("c", p.id, ImagePatch(metadata={"a": 1}, add_captions=["more"]))
        shadow = store.shadow_data
        assert shadow[("c", "texts")][t.id]["metadata"] == {"k": "v"}
        assert shadow[("c", "images")][p.id]["metadata"] == {"a": 1}
        assert "more" in {r["text"] for r in shadow[("c", "texts")].values()}
        assert store.data[("c", "images")][p.id]["metadata"] == {"a": 1}

    asyncio.run(main())
