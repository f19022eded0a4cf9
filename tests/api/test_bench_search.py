"""``clipsearch bench search`` on tiny corpora: the end-to-end figures through a real gateway
(uvicorn on loopback, the client), and the store comparison (Milvus vs faiss HNSW vs numpy
exact) with recall against the exact answer on clustered vectors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clipsearch.bench import search_store as sq
from clipsearch.cli import main
from clipsearch.core.config import get_settings
from tests.helpers import SHAPES_MODEL

pytestmark = pytest.mark.usefixtures("clean_settings")


def _faiss_installed() -> bool:
    try:
        import faiss  # type: ignore[import-untyped,unused-ignore]  # noqa: F401
    except ImportError:
        return False
    return True


def _last_json(out: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(out.strip().splitlines()[-1])
    return rows


def test_bench_search_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "BENCH.md"
    argv = ["bench", "search", "--sizes", "200", "--queries", "5", "--batch", "4"]
    assert main([*argv, "--model-path", str(SHAPES_MODEL), "--out", str(out_file)]) == 0
    out = capsys.readouterr().out
    (row,) = _last_json(out)
    assert row["stored"] == 200
    assert row["backend"] == "faiss"  # the embedded default
    for part in ("e2e", "encode", "store_search"):
        assert 0 < row[part]["p50_ms"] <= row[part]["p95_ms"], part
    assert row["batch_4_ms"] > 0
    assert row["singles_4_ms"] > 0
    assert "| batch of 4 | 4 single requests |" in out
    assert "## Search (clipsearch bench search)" in out_file.read_text()


@pytest.mark.parametrize(("store", "engine"), [("faiss", "store-faiss"), ("lite", "milvus-lite")])
def test_bench_search_store_only_compares_engines(
    store: str, engine: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CLIPSEARCH_EMBEDDED_STORE", store)
    get_settings.cache_clear()
    argv = ["bench", "search", "--store-only", "--dim", "32", "--sizes", "600", "--queries", "20"]
    assert main([*argv, "--clients", "3"]) == 0
    out = capsys.readouterr().out
    (row,) = _last_json(out)
    assert (row["stored"], row["dim"], "e2e" in row) == (600, 32, False)
    engines = {e["engine"]: e for e in row["engines"]}
    want = {engine, "numpy-exact"} | ({"faiss-hnsw"} if _faiss_installed() else set())
    assert set(engines) == want
    assert engines["numpy-exact"]["recall"] == 1.0  # exact is its own reference
    assert engines[engine]["recall"] >= 0.9  # HNSW at ef 128 over 600 rows (faiss: exact)
    for e in engines.values():
        assert 0 < e["p50_ms"] <= e["p99_ms"], e
        assert e["qps"] > 0, e
    assert f"| 600 x 32 | {store} |" in out
    assert "QPS at 3 clients" in out


def test_clustered_vectors_are_unit_and_share_centres() -> None:
    a = sq.clustered(500, 16, seed=0)
    b = sq.clustered(50, 16, seed=1)
    assert a.shape == (500, 16)
    assert a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    # a query's best match is far closer than a random pair: the clusters are shared
    best = (b @ a.T).max(axis=1)
    assert float(np.median(best)) > float(np.median(a[:50] @ a[50:100].T)) + 0.3


def test_exact_top_k_and_recall() -> None:
    corpus = sq.clustered(300, 8, seed=2)
    queries = corpus[[5, 17, 42]]
    exact = sq.exact_top_k(corpus, queries, 4)
    assert exact[:, 0].tolist() == [5, 17, 42]  # each finds itself first
    scores = queries @ corpus.T
    for row, ids in zip(scores, exact, strict=True):
        assert np.all(np.diff(row[ids]) <= 0)  # best first
        assert set(ids.tolist()) == set(np.argsort(-row)[:4].tolist())
    assert sq.recall(exact.tolist(), exact) == 1.0
    half = [[int(r[0]), int(r[1]), -1, -2] for r in exact]
    assert sq.recall(half, exact) == 0.5


def test_bad_dim_is_refused() -> None:
    with pytest.raises(SystemExit):
        main(["bench", "search", "--store-only", "--dim", "0", "--sizes", "10"])


@pytest.mark.standalone
def test_bench_search_on_a_server_compares_with_bare_pymilvus(
    standalone_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["bench", "search", "--store-only", "--dim", "16", "--sizes", "400", "--queries", "10"]
    assert main([*argv, "--clients", "2", "--milvus-uri", standalone_uri]) == 0
    (row,) = _last_json(capsys.readouterr().out)
    assert row["backend"] == "standalone"
    assert row["index_s"] >= 0
    engines = {e["engine"]: e for e in row["engines"]}
    assert {"milvus-standalone", "milvus-bare", "numpy-exact"} <= set(engines)
    # the same collection, ef and consistency: the bare client finds what the store finds
    bare, ours = engines["milvus-bare"]["recall"], engines["milvus-standalone"]["recall"]
    assert abs(bare - ours) <= 0.02
    assert engines["milvus-bare"]["recall"] >= 0.9
    assert engines["milvus-bare"]["p50_ms"] > 0
