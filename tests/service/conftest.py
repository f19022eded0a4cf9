"""Real clip-server processes for the service-mode tests, started with scripts/clipserver_ctl.py.

The model served is ``services/encoder/models/shapes`` (the project's tiny trained CLIP)
when present, else a random-weight model with the same I/O contract (224 px images,
77-token text), built once per session. Tests that need the server FAIL when the encoder
venv is missing: `make test` builds it (scripts/build_encoder_venv.sh).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from clipsearch.core.config import EncoderMode, Settings
from tests.helpers import ROOT, SHAPES_MODEL, free_port

SCRIPT = ROOT / "scripts" / "clipserver_ctl.py"
# CLIPSEARCH_TEST_ENCODER_VENV points the tests at another build of the same venv.
ENCODER_VENV = Path(os.environ.get("CLIPSEARCH_TEST_ENCODER_VENV", ROOT / ".venv-encoder"))
MODEL_NAME = "ViT-B-32::openai"  # tokenizer and 224 px input, as clip-server needs a name


def service_settings(data_dir: Path, url: str, model_path: Path, **overrides: Any) -> Settings:
    """Gateway settings in service mode against ``url``, with the test's own overrides."""
    return Settings(
        _env_file=None,
        data_dir=data_dir,
        encoder_mode=EncoderMode.service,
        encoder_url=url,
        model_name=MODEL_NAME,
        model_path=model_path,
        **overrides,
    )


@dataclass
class ClipServer:
    """One clip-server process driven through the start/stop script."""

    model_path: Path
    workdir: Path
    http_port: int = 0
    grpc_port: int = 0

    @property
    def pid_file(self) -> Path:
        return self.workdir / "clip-server.pid"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = 240.0) -> dict[str, object]:
        if not self.http_port:
            self.http_port, self.grpc_port = free_port(), free_port()
        cmd = [
            sys.executable,
            str(SCRIPT),
            "start",
            "--model-path",
            str(self.model_path),
            "--model-name",
            MODEL_NAME,
            "--http-port",
            str(self.http_port),
            "--grpc-port",
            str(self.grpc_port),
            "--pid-file",
            str(self.pid_file),
            "--minibatch-size",
            "8",
            "--timeout",
            str(timeout),
            "--venv",
            str(ENCODER_VENV),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 30)
        if done.returncode != 0:
            pytest.fail(f"clip-server did not start:\n{done.stdout}\n{done.stderr}")
        record: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
        return record

    def stop(self) -> dict[str, object]:
        cmd = [sys.executable, str(SCRIPT), "stop", "--pid-file", str(self.pid_file)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.strip().splitlines()
        return json.loads(lines[-1]) if lines else {}


def require_encoder_venv() -> Path:
    python = ENCODER_VENV / "bin" / "python"
    if not python.exists():
        pytest.fail(
            f"{python} is missing: these tests need clip-server's venv. "
            "Build it with scripts/build_encoder_venv.sh (make test does)."
        )
    return python


@pytest.fixture(scope="session")
def encoder_python() -> Path:
    return require_encoder_venv()


@pytest.fixture(scope="session")
def service_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model folder clip-server serves and the local encoder loads."""
    if (SHAPES_MODEL / "textual.onnx").is_file() and (SHAPES_MODEL / "visual.onnx").is_file():
        return SHAPES_MODEL
    from tests.encoder.onnx_fixtures import build_model_dir

    # Fixed 77-token text and 224 px input: what clip-server feeds for ViT-B-32.
    folder = tmp_path_factory.mktemp("service-model") / "random"
    return build_model_dir(folder, dim=32, seq=77, image_size=224, seed=42)


@pytest.fixture(scope="session")
def clip_server(
    encoder_python: Path, service_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClipServer]:
    """A clip-server shared by the read-only tests of the session."""
    server = ClipServer(service_model, tmp_path_factory.mktemp("clip-server"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def crash(server: ClipServer) -> None:
    """SIGKILL the server and its children, as a crash or an OOM kill would."""
    record = json.loads(server.pid_file.read_text())
    for pid in [record["main"], *record["children"]]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    stat = Path(f"/proc/{record['main']}/stat")
    deadline = time.monotonic() + 10
    # Gone, or a zombie nobody has reaped yet: either way it serves nothing.
    while time.monotonic() < deadline and stat.exists() and ") Z " not in stat.read_text():
        time.sleep(0.1)
    server.pid_file.unlink()


@pytest.fixture
def own_server(
    encoder_python: Path, service_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClipServer]:
    """A clip-server of the test's own, for tests that crash and restart it."""
    server = ClipServer(service_model, tmp_path_factory.mktemp("outage"))
    server.start()
    try:
        yield server
    finally:
        if server.pid_file.exists():
            server.stop()
