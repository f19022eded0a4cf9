"""The clip-server flows load in jina 3.33 with their values taken from the environment."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.encoder_venv

LOAD = """
import json, sys, warnings
warnings.simplefilter("ignore")
from jina import Flow
f = Flow.load_config(sys.argv[1])
(name, dep), = [(n, d) for n, d in f._deployment_nodes.items() if n != "gateway"]
print(json.dumps({"port": f.port, "protocol": [str(p) for p in f.protocol],
                  "uses": json.loads(dep.args.uses), "env": dep.args.env}))
"""

ENV = {
    "CLIP_MODEL_NAME": "ViT-B-16::openai",
    "CLIP_MINIBATCH_SIZE": "48",
    "CLIP_NUM_THREADS": "3",
    "CLIP_GRPC_PORT": "52000",
    "CLIP_HTTP_PORT": "52001",
    "NO_VERSION_CHECK": "1",
    "JINA_OPTOUT_TELEMETRY": "1",
}


def load(encoder_python: Path, flow: str, **extra: str) -> dict[str, object]:
    env = {**os.environ, **ENV, **extra}
    done = subprocess.run(
        [str(encoder_python), "-c", LOAD, str(ROOT / "services/encoder" / flow)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_onnx_flow_values_are_typed_from_the_environment(encoder_python: Path) -> None:
    got = load(encoder_python, "flow-onnx.yml", CLIP_MODEL_PATH="/models/shapes")
    assert got["port"] == [52000, 52001]
    assert got["protocol"] == ["GRPC", "HTTP"]
    assert got["env"] == {"OMP_NUM_THREADS": 3}
    assert got["uses"]["with"] == {  # type: ignore[index]
        "name": "ViT-B-16::openai",
        "model_path": "/models/shapes",
        "minibatch_size": 48,
        "num_worker_preprocess": 3,
    }
    assert got["uses"]["metas"]["py_modules"] == ["clip_server.executors.clip_onnx"]  # type: ignore[index]


def test_empty_model_path_means_download_by_name(encoder_python: Path) -> None:
    # The Dockerfile sets CLIP_MODEL_PATH= by default; jina turns the empty value into null.
    got = load(encoder_python, "flow-onnx.yml", CLIP_MODEL_PATH="")
    assert got["uses"]["with"]["model_path"] is None  # type: ignore[index]


def test_torch_flow_uses_the_torch_executor(encoder_python: Path) -> None:
    got = load(encoder_python, "flow-torch.yml")
    assert got["port"] == [52000, 52001]
    assert got["uses"]["metas"]["py_modules"] == ["clip_server.executors.clip_torch"]  # type: ignore[index]
    assert got["uses"]["with"]["minibatch_size"] == 48  # type: ignore[index]
