"""scripts/export_open_clip.py on a randomly initialised ViT-B-32, against open_clip itself.

The exporter and the reference forward pass run in the export venv (torch + open_clip,
``make export-venv``); the exported graphs run here, in the gateway's ONNX Runtime, as the
local encoder will run them. The export (~600 MB of ONNX) happens once per session.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import pytest

from clipsearch.encoder.tokenizer import get_tokenizer
from tests.helpers import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.export_venv]

EXPORT_VENV = Path(os.environ.get("EXPORT_VENV", ROOT / ".venv-export"))
MODEL, SEED, DIM, SIZE = "ViT-B-32", 0, 512, 224
COSINE_MIN = 0.99999

TEXTS = [
    "",
    "a",
    "a photo of a dog",
    "A small RED circle on the left.",
    "a blue square above a yellow star",
    "two cats sleeping on a sofa next to a window in the afternoon sun",
    "Ünïcödé façade — naïve café",
    "一只在草地上奔跑的狗",
    "pizza 🍕 and ice cream 🍦!!!",
    "what's this? it's a 3-legged stool, isn't it?",
    "&amp; html &lt;escaped&gt; text",
    "   lots    of   spaces\tand\ttabs\n",
    "1234567890 0987654321",
    "#hashtag @mention http://example.com/path?q=1",
    "the " * 30,
    "a very long caption that goes on " * 12,  # > 77 tokens: truncated, EOT kept
    "supercalifragilisticexpialidocious",
    "x" * 200,
    "Dog. Cat. Bird. Fish. Horse. Cow. Sheep. Goat.",
    "a red car",
]


def _run(args: list[str], what: str) -> float:
    """Run a command; fail with its output if it fails. Returns the seconds it took."""
    started = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, timeout=840, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        pytest.fail(
            f"{what} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    sys.stderr.write(f"{what}: {elapsed:.1f}s\n{proc.stdout}")
    return elapsed


@pytest.fixture(scope="session")
def export_python() -> Path:
    """The export venv's interpreter; a missing venv is a failure that names the fix."""
    python = EXPORT_VENV / "bin" / "python"
    if not python.is_file():
        pytest.fail(
            f"export venv missing: {EXPORT_VENV} (torch + open_clip). "
            "Build it with `make export-venv` (make test does)."
        )
    return python


@pytest.fixture(scope="session")
def exported(export_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The exported model folder, made once per session."""
    out = tmp_path_factory.mktemp("export") / "vit-b-32"
    script = ROOT / "scripts" / "export_open_clip.py"
    args = [str(export_python), str(script), "--model", MODEL, "--random-init"]
    _run([*args, "--seed", str(SEED), "--out", str(out)], "export")
    return out


@pytest.fixture(scope="session")
def reference(
    export_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, npt.NDArray[np.generic]]:
    """open_clip's own ids and embeddings for TEXTS and a few pictures."""
    work = tmp_path_factory.mktemp("reference")
    (work / "texts.json").write_text(json.dumps(TEXTS), encoding="utf-8")
    helper = Path(__file__).with_name("open_clip_reference.py")
    _run(
        [
            *(str(export_python), str(helper), "--model", MODEL, "--seed", str(SEED)),
            *("--texts", str(work / "texts.json"), "--out", str(work / "ref.npz")),
        ],
        "open_clip reference",
    )
    with np.load(work / "ref.npz") as data:
        return {key: data[key] for key in data.files}


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="session")
def textual(exported: Path) -> ort.InferenceSession:
    return _session(exported / "textual.onnx")


@pytest.fixture(scope="session")
def visual(exported: Path) -> ort.InferenceSession:
    return _session(exported / "visual.onnx")


def _cosines(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    out: npt.NDArray[np.float64] = np.sum(a64 * b64, axis=1) / (
        np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1)
    )
    return out


def _encode(sess: ort.InferenceSession, ids: npt.NDArray[np.generic]) -> npt.NDArray[np.float32]:
    """Text embeddings; the mask is what a CLIP tokenizer gives (1 on real tokens)."""
    ids32 = ids.astype(np.int32)
    (out,) = sess.run(None, {"input_ids": ids32, "attention_mask": (ids32 != 0).astype(np.int32)})
    return np.asarray(out)


def test_io_names_dtypes_and_dynamic_axes_match_the_contract(
    textual: ort.InferenceSession, visual: ort.InferenceSession
) -> None:
    text_inputs = {i.name: (i.type, i.shape) for i in textual.get_inputs()}
    assert text_inputs == {
        "input_ids": ("tensor(int32)", ["batch", "sequence"]),
        "attention_mask": ("tensor(int32)", ["batch", "sequence"]),
    }
    image_inputs = [(i.name, i.type, i.shape) for i in visual.get_inputs()]
    assert image_inputs == [("pixel_values", "tensor(float)", ["batch", 3, SIZE, SIZE])]
    for sess in (textual, visual):
        (output,) = sess.get_outputs()
        assert (output.type, output.shape) == ("tensor(float)", ["batch", DIM])


def test_opset_is_17(exported: Path) -> None:
    import onnx

    # Structure only: the weights (hundreds of MB) are not needed to read the opset.
    model = onnx.load(str(exported / "textual.onnx"), load_external_data=False)
    assert {o.domain: o.version for o in model.opset_import}.get("") == 17


def test_clipsearch_json_describes_the_files(exported: Path) -> None:
    card = json.loads((exported / "clipsearch.json").read_text(encoding="utf-8"))
    fingerprint = hashlib.sha256()
    for name in ("textual.onnx", "visual.onnx"):
        data = (exported / name).read_bytes()
        fingerprint.update(data)
        assert card["files"][name] == {
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
        }
    assert card["fingerprint"] == fingerprint.hexdigest()
    assert card["name"] == f"{MODEL}::random-init-seed{SEED}"
    assert (card["dim"], card["image_size"], card["context_length"]) == (DIM, SIZE, 77)
    assert card["dynamic_text_length"] is True
    assert card["mean"] == pytest.approx([0.48145466, 0.4578275, 0.40821073])
    assert card["std"] == pytest.approx([0.26862954, 0.26130258, 0.27577711])


def test_images_match_open_clip(
    visual: ort.InferenceSession, reference: dict[str, npt.NDArray[np.generic]]
) -> None:
    pixels = reference["pixels"].astype(np.float32)
    want = reference["image_features"].astype(np.float32)
    (batch,) = visual.run(None, {"pixel_values": pixels})
    (single,) = visual.run(None, {"pixel_values": pixels[2:3]})
    cosines = _cosines(np.asarray(batch), want)
    diff = np.abs(np.asarray(batch) - want).max()
    sys.stderr.write(f"image cosines: min {cosines.min():.9f}, max |diff| {diff:.3g}\n")
    assert cosines.min() >= COSINE_MIN, cosines
    assert np.abs(np.asarray(single)[0] - np.asarray(batch)[2]).max() < 1e-4


def test_texts_match_open_clip(
    textual: ort.InferenceSession, reference: dict[str, npt.NDArray[np.generic]]
) -> None:
    ids = reference["text_ids"]
    assert ids.shape == (len(TEXTS), 77)
    got, want = _encode(textual, ids), reference["text_features"].astype(np.float32)
    cosines = _cosines(got, want)
    diff = np.abs(got - want).max()
    sys.stderr.write(f"text cosines: min {cosines.min():.9f}, max |diff| {diff:.3g}\n")
    assert cosines.min() >= COSINE_MIN, cosines


def test_trimmed_text_equals_77_tokens(
    textual: ort.InferenceSession, reference: dict[str, npt.NDArray[np.generic]]
) -> None:
    ids = reference["text_ids"]
    lengths = (ids != 0).sum(axis=1)
    assert lengths.min() == 2  # ""
    assert lengths.max() == 77  # the over-long text
    full = _encode(textual, ids)
    # The batch trimmed to its longest real text, as the local encoder does ...
    short = ids[lengths < 77]
    trimmed = _encode(textual, short[:, : (short != 0).sum(axis=1).max()])
    diff_batch = np.abs(trimmed - full[lengths < 77]).max()
    # ... and every text alone at exactly its own length (down to 2 tokens).
    diff_alone = max(
        np.abs(_encode(textual, ids[i : i + 1, :n])[0] - full[i]).max()
        for i, n in enumerate(lengths)
    )
    sys.stderr.write(f"trimmed vs 77: batch {diff_batch:.3g}, alone {diff_alone:.3g}\n")
    assert (short != 0).sum(axis=1).max() < short.shape[1] == 77  # really trimmed
    assert diff_batch <= 1e-5
    assert diff_alone <= 1e-5


def test_project_tokenizer_gives_open_clips_ids(
    reference: dict[str, npt.NDArray[np.generic]],
) -> None:
    """The gateway feeds its own tokenizer's ids to the exported graph: they must agree."""
    ids, mask = get_tokenizer().tokenize(TEXTS)
    np.testing.assert_array_equal(ids, reference["text_ids"])
    np.testing.assert_array_equal(mask, (reference["text_ids"] != 0).astype(np.int32))
