"""A loopback imitation of the Hugging Face hub's file endpoints, serving fixture files.

``huggingface_hub.get_hf_file_metadata`` sends ``HEAD {endpoint}/{repo}/resolve/{rev}/{path}``
and reads ``X-Repo-Commit``, ``ETag`` (``X-Linked-Etag``/``X-Linked-Size`` for LFS files) and
``Content-Length``; the bytes come from ``GET`` on the same address (``Range`` honoured).
Unknown repositories, revisions and files answer 404 with the hub's ``X-Error-Code``.

Faults, by file path: ``corrupt`` serves other bytes than the ETag's digest says;
``truncate`` drops the connection half-way through each un-ranged GET.
"""

from __future__ import annotations

import hashlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def folder_files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by its relative path (the repository's content)."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


class FakeHub:
    """``repos``: repo id -> {path: bytes}. ``requests``: (method, path, Range header)."""

    def __init__(self, repos: dict[str, dict[str, bytes]]) -> None:
        self.repos = repos
        self.corrupt: set[str] = set()
        self.truncate: set[str] = set()
        self.requests: list[tuple[str, str, str | None]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _find(self) -> tuple[str, bytes] | None:
                head, sep, rest = self.path.partition("/resolve/")
                repo = head.lstrip("/")
                rev, _, rel = rest.partition("/")
                if not sep or repo not in outer.repos:
                    self._missing("RepoNotFound")
                    return None
                if rev not in ("main", COMMIT):
                    self._missing("RevisionNotFound")
                    return None
                body = outer.repos[repo].get(rel)
                if body is None:
                    self._missing("EntryNotFound")
                    return None
                return rel, body

            def _missing(self, code: str) -> None:
                self.send_response(404)
                self.send_header("X-Error-Code", code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _meta_headers(self, rel: str, body: bytes) -> None:
                self.send_header("X-Repo-Commit", COMMIT)
                if rel.endswith(".onnx"):  # an LFS file: its sha256
                    self.send_header("X-Linked-Etag", f'"{hashlib.sha256(body).hexdigest()}"')
                    self.send_header("X-Linked-Size", str(len(body)))
                self.send_header("ETag", f'"{git_sha1(body)}"')

            def do_HEAD(self) -> None:
                outer.requests.append(("HEAD", self.path, None))
                found = self._find()
                if found is None:
                    return
                rel, body = found
                self.send_response(200)
                self._meta_headers(rel, body)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()

            def do_GET(self) -> None:
                rng = self.headers.get("Range")
                outer.requests.append(("GET", self.path, rng))
                found = self._find()
                if found is None:
                    return
                rel, body = found
                if rel in outer.corrupt:
                    body = bytes(b ^ 0xFF for b in body)
                start = int(rng.removeprefix("bytes=").rstrip("-")) if rng else 0
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206 if rng else 200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if rel in outer.truncate and not rng:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
