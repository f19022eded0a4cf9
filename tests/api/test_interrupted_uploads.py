"""A gateway killed mid-upload (captions written, image vector not) leaves a write journal;
the next start removes those captions before it serves, so no orphan caption stays."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np
from fastapi.testclient import TestClient

from clipsearch.api.app import create_app
from clipsearch.api.state import AppState
from clipsearch.core.config import Settings
from clipsearch.store.protocol import TextRecord
from clipsearch.usecases.write_journal import WriteJournal
from tests.api.conftest import make_corpus, upload
from tests.helpers import SHAPES_MODEL


def test_the_next_start_removes_captions_of_a_half_written_upload(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path, model_path=SHAPES_MODEL)
    pngs, captions = make_corpus()
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert upload(client, pngs[:2], captions[:2]).status_code == 200
        state = cast(AppState, client.app.state.clipsearch)  # type: ignore[attr-defined]
        group = settings.default_collection
        # What a kill between the two writes leaves: the journal, then the caption texts.
        lost_image = "d" * 64
        orphans = [f"{'e' * 63}{i}" for i in range(3)]
        WriteJournal(tmp_path / "pending-writes").begin(group, {lost_image: orphans})
        vector = np.ones(state.encoder.dim, dtype=np.float32)
        state.store.upsert_texts(
            group,
            [TextRecord(id=t, vector=vector, text="lost", image_id=lost_image) for t in orphans],
        )
        assert client.get("/v1/stats").json()["collections"][group]["counts"]["texts"] == 5

    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        counts = client.get("/v1/stats").json()["collections"][group]["counts"]
        assert counts == {"images": 2, "texts": 2}  # the two whole pictures, no orphan
    assert list((tmp_path / "pending-writes").iterdir()) == []
