"""clip-client over gRPC (in the encoder venv) agrees with the gateway's ServiceEncoder.

clip-client cannot live in the gateway's venv (jina pins pydantic<2), so a small script
runs in ``.venv-encoder`` and prints the vectors as JSON.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from clipsearch.encoder.service import ServiceEncoder
from tests.helpers import encoded, photo
from tests.service.conftest import MODEL_NAME, ClipServer

pytestmark = pytest.mark.encoder_venv

CLIENT_SCRIPT = """
import json, sys, warnings
warnings.simplefilter("ignore")
from clip_client import Client

port, texts, paths = int(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
client = Client(f"grpc://127.0.0.1:{port}")
out = {
    "texts": client.encode(texts, show_progress=False).tolist(),
    "images": client.encode(paths, show_progress=False).tolist(),
}
print(json.dumps(out))
"""

TEXTS = ["a red square", "two small green triangles", "a photo of a dog"]


def test_grpc_client_agrees_with_the_service_encoder(
    clip_server: ClipServer, encoder_python: Path, service_model: Path, tmp_path: Path
) -> None:
    paths = []
    for i, (fmt, size) in enumerate([("PNG", (320, 240)), ("JPEG", (400, 300))]):
        path = tmp_path / f"img{i}.{fmt.lower()}"
        path.write_bytes(encoded(photo(*size, seed=20 + i), fmt))
        paths.append(path)

    done = subprocess.run(
        [
            str(encoder_python),
            "-c",
            CLIENT_SCRIPT,
            str(clip_server.grpc_port),
            json.dumps(TEXTS),
            json.dumps([str(p) for p in paths]),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    grpc = json.loads(done.stdout.strip().splitlines()[-1])

    async def ours() -> tuple[np.ndarray, np.ndarray]:
        enc = ServiceEncoder(clip_server.url, model_name=MODEL_NAME, model_path=service_model)
        try:
            texts = await enc.encode_texts(TEXTS)
            images = await enc.encode_images([p.read_bytes() for p in paths])
        finally:
            await enc.close()
        return texts, images

    texts, images = asyncio.run(ours())
    for name, theirs, mine in (("texts", grpc["texts"], texts), ("images", grpc["images"], images)):
        theirs_arr = np.asarray(theirs, dtype=np.float32)
        assert theirs_arr.shape == mine.shape, name
        # clip-client returns raw embeddings; the gateway normalises.
        theirs_arr /= np.linalg.norm(theirs_arr, axis=1, keepdims=True)
        cos = np.sum(theirs_arr * mine, axis=1)
        assert cos.min() >= 0.9999, (name, cos)
