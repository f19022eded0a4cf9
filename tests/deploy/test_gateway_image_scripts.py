"""The gateway image's healthcheck and entrypoint scripts, run for real on this machine."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers import ROOT

HEALTHCHECK = ROOT / "deploy/gateway-healthcheck.py"
ENTRYPOINT = ROOT / "deploy/gateway-entrypoint.sh"


class _Readyz(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = 200 if self.path == "/readyz" else 404
        code = type(self).status if code == 200 else code
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b'{"status": "x"}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def readyz_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Readyz)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    _Readyz.status = 200


def run_healthcheck(**env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("CLIPSEARCH_")} | env
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK)], env=full, capture_output=True, text=True, timeout=30
    )


def test_healthcheck_probes_the_configured_port(readyz_server: ThreadingHTTPServer) -> None:
    port = str(readyz_server.server_address[1])
    done = run_healthcheck(CLIPSEARCH_HOST="0.0.0.0", CLIPSEARCH_PORT=port)
    assert done.returncode == 0, done.stdout
    assert f"127.0.0.1:{port}/readyz: 200" in done.stdout
    _Readyz.status = 503
    done = run_healthcheck(CLIPSEARCH_HOST="0.0.0.0", CLIPSEARCH_PORT=port)
    assert done.returncode == 1
    assert "503" in done.stdout


def test_healthcheck_fails_where_nothing_listens(readyz_server: ThreadingHTTPServer) -> None:
    port = readyz_server.server_address[1]
    readyz_server.shutdown()
    readyz_server.server_close()
    done = run_healthcheck(CLIPSEARCH_PORT=str(port))
    assert done.returncode == 1
    assert "refused" in done.stdout.lower() or "error" in done.stdout.lower()


def test_entrypoint_refuses_a_data_dir_it_cannot_write(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    env = {"PATH": os.environ["PATH"], "CLIPSEARCH_DATA_DIR": str(blocker / "data")}
    done = subprocess.run(
        ["sh", str(ENTRYPOINT), "echo", "started"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 1
    assert "started" not in done.stdout
    assert f"clipsearch: {blocker / 'data'} is not writable by uid" in done.stderr
    assert "named volume" in done.stderr


def test_entrypoint_runs_the_command_when_the_data_dir_is_writable(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "CLIPSEARCH_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        ["sh", str(ENTRYPOINT), "echo", "started"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "started"
    assert list((tmp_path / "data").iterdir()) == []  # the write probe is removed


def run_entrypoint(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        # The venv's bin first: the entrypoint runs `clipsearch keys add`.
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "CLIPSEARCH_DATA_DIR": str(tmp_path / "data"),
    }
    return subprocess.run(
        ["sh", str(ENTRYPOINT), "echo", "started"],
        env=base | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_first_start_without_keys_makes_one_admin_key(tmp_path: Path) -> None:
    from clipsearch.core.keys import Scope, load_entries

    keys_file = tmp_path / "data" / "api-keys"
    done = run_entrypoint(tmp_path, CLIPSEARCH_API_KEYS_FILE=str(keys_file))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "started"
    shown = [ln for ln in done.stderr.splitlines() if "admin API key: " in ln]
    assert len(shown) == 1, done.stderr
    key = shown[0].split("admin API key: ", 1)[1].split()[0]
    (entry,) = load_entries([], keys_file)
    assert entry.scope == Scope.parse("admin")
    assert entry.matches(key)
    assert key not in keys_file.read_text()  # only the salted hash is kept
    assert keys_file.stat().st_mode & 0o077 == 0
    # The second start keeps that key and shows nothing.
    again = run_entrypoint(tmp_path, CLIPSEARCH_API_KEYS_FILE=str(keys_file))
    assert again.returncode == 0, again.stderr
    assert "API key" not in again.stderr
    (same,) = load_entries([], keys_file)
    assert same.matches(key)


@pytest.mark.parametrize(
    "env",
    [{"CLIPSEARCH_API_KEYS": "read:x:scrypt:00:00"}, {"CLIPSEARCH_AUTH": "off"}, {}],
    ids=["keys-given", "auth-off", "no-keys-file"],
)
def test_no_key_is_made_when_keys_are_given_or_not_wanted(
    tmp_path: Path, env: dict[str, str]
) -> None:
    keys_file = tmp_path / "data" / "api-keys"
    extra = {} if not env else {"CLIPSEARCH_API_KEYS_FILE": str(keys_file)}
    done = run_entrypoint(tmp_path, **(extra | env))
    assert done.returncode == 0, done.stderr
    assert "API key" not in done.stderr
    assert not keys_file.exists()
