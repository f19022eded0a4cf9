"""Our CLIP tokenizer gives clip-server's ids and masks, string for string.

The fixture was produced by clip-server 0.8.2's own tokenizer in the encoder venv
(``scripts/make_tokenizer_fixture.py``); this test needs only the gateway venv.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clipsearch.encoder.tokenizer import CONTEXT_LENGTH, ClipTokenizer, get_tokenizer

FIXTURE = Path(__file__).parents[1] / "fixtures/tokenizer/clip_server_tokens.jsonl.gz"


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="module")
def tokenizer() -> ClipTokenizer:
    return get_tokenizer()


def test_fixture_covers_the_hard_cases(records: list[dict[str, Any]]) -> None:
    texts = [r["text"] for r in records]
    assert len(texts) >= 1000
    assert len(set(texts)) == len(texts)
    assert "" in texts
    assert any(t.strip() == "" and t for t in texts), "whitespace-only string missing"
    assert any("猫" in t for t in texts)
    assert any("ひらがな" in t for t in texts)
    assert any("👨‍👩‍👧‍👦" in t for t in texts)
    assert any("&amp;" in t for t in texts)
    assert any("Ã©" in t for t in texts)
    # Truncated rows: all 77 positions used, and clip-server keeps the EOT token last.
    truncated = [r for r in records if sum(r["attention_mask"]) == CONTEXT_LENGTH]
    assert len(truncated) >= 20
    assert all(r["input_ids"][-1] == 49407 for r in truncated)


def test_ids_and_masks_equal_clip_server(
    records: list[dict[str, Any]], tokenizer: ClipTokenizer
) -> None:
    ids, mask = tokenizer.tokenize([r["text"] for r in records])
    assert ids.dtype == np.int32
    assert mask.dtype == np.int32
    assert ids.shape == mask.shape == (len(records), CONTEXT_LENGTH)
    want_ids = np.asarray([r["input_ids"] for r in records], dtype=np.int64)
    want_mask = np.asarray([r["attention_mask"] for r in records], dtype=np.int64)
    bad = np.flatnonzero((ids != want_ids).any(axis=1) | (mask != want_mask).any(axis=1))
    details = [
        f"{records[i]['text']!r}: ours {ids[i][mask[i] > 0].tolist()} "
        f"clip-server {want_ids[i][want_mask[i] > 0].tolist()}"
        for i in bad[:5]
    ]
    assert bad.size == 0, f"{bad.size} strings differ, e.g.\n" + "\n".join(details)


def test_single_and_batched_tokenization_agree(
    records: list[dict[str, Any]], tokenizer: ClipTokenizer
) -> None:
    # The BPE cache is shared between calls: a word's ids must not depend on what came first.
    sample = records[::97]
    for r in sample:
        ids, mask = tokenizer.tokenize([r["text"]])
        assert ids[0].tolist() == r["input_ids"]
        assert mask[0].tolist() == r["attention_mask"]
