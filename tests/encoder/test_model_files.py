"""Model resolution and download against a real loopback HTTP server serving fixture files."""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from clipsearch.core.config import Settings
from clipsearch.encoder.model_files import (
    ModelResolutionError,
    cache_folder_name,
    ensure_file,
    image_size_for_name,
    resolve_model_files,
)
from tests.helpers import free_port

GOOD = bytes(range(256)) * 400  # 100 KiB
OTHER = b"visual-weights" * 3000


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


class FixtureServer:
    """Serves ``files``; paths under /trunc/ drop the connection half-way unless ranged."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests: list[tuple[str, str | None]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                rng = self.headers.get("Range")
                outer.requests.append((self.path, rng))
                body = outer.files.get(self.path)
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = int(rng.removeprefix("bytes=").rstrip("-")) if rng else 0
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206 if rng else 200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if self.path.startswith("/trunc/") and not rng:
                    # Promise the whole file, send half, hang up.
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> FixtureServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[FixtureServer]:
    files = {
        "/m/textual.onnx": GOOD,
        "/m/visual.onnx": OTHER,
        "/bad/textual.onnx": b"tampered" + GOOD,
        "/trunc/textual.onnx": GOOD,
    }
    with FixtureServer(files) as srv:
        yield srv


def test_good_file_downloads_verifies_and_is_cached(server: FixtureServer, tmp_path: Path) -> None:
    target = tmp_path / "textual.onnx"
    ensure_file(f"{server.url}/m/textual.onnx", target, md5(GOOD), timeout=5)
    assert target.read_bytes() == GOOD
    assert not (tmp_path / "textual.onnx.part").exists()
    assert len(server.requests) == 1
    # Second call: verified from the stamp, no request.
    ensure_file(f"{server.url}/m/textual.onnx", target, md5(GOOD), timeout=5)
    assert len(server.requests) == 1


def test_wrong_md5_deletes_and_reports(server: FixtureServer, tmp_path: Path) -> None:
    target = tmp_path / "textual.onnx"
    with pytest.raises(ModelResolutionError, match="md5 mismatch"):
        ensure_file(f"{server.url}/bad/textual.onnx", target, md5(GOOD), timeout=5)
    assert not target.exists()
    assert not (tmp_path / "textual.onnx.part").exists()


def test_truncated_download_resumes_with_range(server: FixtureServer, tmp_path: Path) -> None:
    target = tmp_path / "textual.onnx"
    ensure_file(f"{server.url}/trunc/textual.onnx", target, md5(GOOD), timeout=5)
    assert target.read_bytes() == GOOD
    assert server.requests[0] == ("/trunc/textual.onnx", None)
    assert server.requests[1] == ("/trunc/textual.onnx", f"bytes={len(GOOD) // 2}-")


def test_part_file_left_by_a_previous_run_is_resumed(server: FixtureServer, tmp_path: Path) -> None:
    target = tmp_path / "textual.onnx"
    (tmp_path / "textual.onnx.part").write_bytes(GOOD[:1000])
    ensure_file(f"{server.url}/m/textual.onnx", target, md5(GOOD), timeout=5)
    assert target.read_bytes() == GOOD
    assert server.requests == [("/m/textual.onnx", "bytes=1000-")]


def test_404_fails_at_once(server: FixtureServer, tmp_path: Path) -> None:
    with pytest.raises(ModelResolutionError, match="HTTP 404"):
        ensure_file(f"{server.url}/nope/textual.onnx", tmp_path / "t.onnx", md5(GOOD), timeout=5)
    assert len(server.requests) == 1


def test_corrupt_cached_file_is_downloaded_again(server: FixtureServer, tmp_path: Path) -> None:
    target = tmp_path / "textual.onnx"
    target.write_bytes(b"old junk")
    ensure_file(f"{server.url}/m/textual.onnx", target, md5(GOOD), timeout=5)
    assert target.read_bytes() == GOOD


def test_resolve_by_name_downloads_then_works_offline(
    server: FixtureServer, tmp_path: Path
) -> None:
    table = {"Tiny::test": (("m/textual.onnx", md5(GOOD)), ("m/visual.onnx", md5(OTHER)))}
    settings = Settings(data_dir=tmp_path, model_name="Tiny::test", model_base_url=server.url)
    files = resolve_model_files(settings, table=table)
    assert files.folder == tmp_path / "models" / "Tiny-test"
    assert files.textual.read_bytes() == GOOD
    assert files.visual.read_bytes() == OTHER
    offline = settings.model_copy(update={"model_base_url": f"http://127.0.0.1:{free_port()}/"})
    assert resolve_model_files(offline, table=table) == files


def test_server_absent_gives_a_startup_error_naming_the_fix(tmp_path: Path) -> None:
    table = {"Tiny::test": (("m/textual.onnx", md5(GOOD)), ("m/visual.onnx", md5(OTHER)))}
    settings = Settings(
        data_dir=tmp_path,
        model_name="Tiny::test",
        model_base_url=f"http://127.0.0.1:{free_port()}/",
        model_download_timeout_s=2,
    )
    with pytest.raises(ModelResolutionError) as info:
        resolve_model_files(settings, table=table)
    message = str(info.value)
    assert "CLIPSEARCH_MODEL_PATH" in message
    assert str(tmp_path / "models" / "Tiny-test") in message


def test_model_path_wins_and_must_be_complete(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "textual.onnx").write_bytes(b"t")
    settings = Settings(data_dir=tmp_path, model_path=folder, model_base_url="http://127.0.0.1:1/")
    with pytest.raises(ModelResolutionError, match=r"visual\.onnx"):
        resolve_model_files(settings)
    (folder / "visual.onnx").write_bytes(b"v")
    assert resolve_model_files(settings).folder == folder


def test_unknown_name_uses_cache_or_explains(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, model_name="shapes")
    with pytest.raises(ModelResolutionError, match="not one of the published"):
        resolve_model_files(settings)
    cached = tmp_path / "models" / "shapes"
    cached.mkdir(parents=True)
    (cached / "textual.onnx").write_bytes(b"t")
    (cached / "visual.onnx").write_bytes(b"v")
    assert resolve_model_files(settings).folder == cached


def test_names_and_sizes_follow_clip_server() -> None:
    assert cache_folder_name("ViT-B-32::openai") == "ViT-B-32-openai"
    assert cache_folder_name("ViT-L/14@336px") == "ViT-L-14@336px"
    assert image_size_for_name("ViT-L-14-336::openai") == 336
    assert image_size_for_name("nope") is None
