"""Immich-layout folders: the config read from their files, the inputs fed to each graph kind
(``text`` vs ``input_ids``+``attention_mask``, NLLB's language code), and preprocessing that
follows ``preprocess_cfg.json`` (SigLIP's squash resize vs CLIP's centre crop)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image
from tokenizers import Tokenizer

from clipsearch.encoder.layouts import (
    CLIP_SERVER,
    IMMICH,
    detect_layout,
    read_immich_config,
    score_from_cosine,
)
from clipsearch.encoder.local import LocalEncoder
from clipsearch.encoder.model_config import read_model_config
from clipsearch.encoder.model_files import ModelFiles
from clipsearch.encoder.ort_session import OrtSession
from clipsearch.encoder.protocol import EncoderError
from clipsearch.encoder.towers import ClipTextual, TextOnly
from tests.encoder.layout_fixtures import KINDS, build_immich_dir
from tests.encoder.onnx_fixtures import build_model_dir

TEXTS = ["a red circle", "红色的圆形", "Красная площадь", "🐱", ""]
Feeds = Mapping[str, npt.NDArray[np.generic]]


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("immich")
    return {kind: build_immich_dir(root / kind, kind, seed=i) for i, kind in enumerate(KINDS)}


@pytest.fixture
def feeds(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, np.ndarray]]]:
    """Every ``OrtSession._run_once`` call's feeds, by graph file name (a spy)."""
    seen: list[tuple[str, dict[str, np.ndarray]]] = []
    original = OrtSession._run_once

    def spy(self: OrtSession, typed: Feeds) -> npt.NDArray[np.float32]:
        seen.append((self.path.parent.name, {k: np.array(v) for k, v in typed.items()}))
        return original(self, typed)

    monkeypatch.setattr(OrtSession, "_run_once", spy)
    return seen


def _encoder(folder: Path, name: str = "test") -> LocalEncoder:
    return LocalEncoder(ModelFiles(folder), model_name=name)


def test_detect_layout(folders: dict[str, Path], tmp_path: Path) -> None:
    assert detect_layout(folders["mclip"]) == IMMICH
    assert ModelFiles(folders["mclip"]).textual == folders["mclip"] / "textual/model.onnx"
    assert ModelFiles(folders["mclip"]).complete()
    server = build_model_dir(tmp_path / "server")
    assert detect_layout(server) == CLIP_SERVER
    assert ModelFiles(server).textual == server / "textual.onnx"
    assert detect_layout(tmp_path / "nothing") is None
    assert not ModelFiles(tmp_path / "nothing").complete()


def test_configs_per_kind(folders: dict[str, Path]) -> None:
    clip = read_model_config(folders["openclip"], "ViT-B-32__openai")
    assert (clip.layout, clip.tokenizer, clip.resize_mode, clip.score) == (
        IMMICH,
        "tokenizer.json",
        "shortest",
        "cosine",
    )
    assert (clip.dim, clip.image_size, clip.context_length) == (12, 24, 16)
    siglip = read_model_config(folders["siglip"], "ViT-B-16-SigLIP2__webli")
    assert siglip.resize_mode == "squash"
    assert siglip.mean == siglip.std == (0.5, 0.5, 0.5)
    assert siglip.text_clean == "canonicalize"
    assert siglip.score == "sigmoid"
    assert siglip.language_prefix is None
    nllb = read_model_config(folders["nllb"], "nllb-clip-base-siglip__v1")
    assert nllb.language_prefix == "flores200"
    assert read_model_config(folders["mclip"], "XLM-Roberta-Large-Vit-B-16Plus").score == "cosine"


def test_clipsearch_json_overrides_the_layout(folders: dict[str, Path], tmp_path: Path) -> None:
    folder = build_immich_dir(tmp_path / "m", "mclip")
    (folder / "clipsearch.json").write_text(
        json.dumps({"name": "tiny-bilingual", "languages": ["en", "zh"], "image_size": 24})
    )
    cfg = read_model_config(folder, "default")
    assert cfg.name == "tiny-bilingual"
    assert cfg.languages == ("en", "zh")
    assert cfg.layout == IMMICH  # the layout's own values stay


def test_missing_config_is_named(tmp_path: Path) -> None:
    folder = build_immich_dir(tmp_path / "m", "openclip")
    (folder / "visual/preprocess_cfg.json").unlink()
    with pytest.raises(EncoderError, match=r"preprocess_cfg\.json"):
        read_immich_config(folder, "x")
    (folder / "visual/preprocess_cfg.json").write_text(json.dumps({"resize_mode": "longest"}))
    with pytest.raises(EncoderError, match="resize_mode"):
        read_immich_config(folder, "x")


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_encodes_unit_vectors(folders: dict[str, Path], kind: str) -> None:
    enc = _encoder(folders[kind])
    texts = asyncio.run(enc.encode_texts(TEXTS))
    png = Image.new("RGB", (40, 30), (200, 30, 30))
    images = enc.encode_pixels(np.stack([enc.preprocess(png), enc.preprocess(png)]))
    assert texts.shape == (len(TEXTS), 12)
    assert images.shape == (2, 12)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    assert enc.dim == 12
    tower = enc.load().textual
    assert isinstance(tower, ClipTextual if kind == "mclip" else TextOnly)
    # The graphs fix a batch of 1 (as Immich exports them): each row alone gives the same.
    one = np.concatenate([enc.encode_texts_sync([t]) for t in TEXTS])
    np.testing.assert_allclose(one, texts, atol=1e-6)


def test_mclip_is_fed_the_reference_ids_and_mask(
    folders: dict[str, Path], feeds: list[tuple[str, dict[str, np.ndarray]]]
) -> None:
    folder = folders["mclip"]
    enc = _encoder(folder)
    enc.encode_texts_sync(["a red circle"])
    ref = Tokenizer.from_file(str(folder / "textual/tokenizer.json")).encode("a red circle")
    (graph, fed) = next(f for f in feeds if f[0] == "textual")
    assert graph == "textual"
    assert set(fed) == {"input_ids", "attention_mask"}
    n = len(ref.ids)
    # The graph's length is fixed at 16: ids padded with <pad> (1), mask 1 over the tokens.
    assert fed["input_ids"].shape == (1, 16)
    assert fed["input_ids"][0, :n].tolist() == ref.ids
    assert (fed["input_ids"][0, n:] == 1).all()
    assert fed["attention_mask"][0].tolist() == [1] * n + [0] * (16 - n)


def test_openclip_text_is_fed_padded_with_the_pad_token(
    folders: dict[str, Path], feeds: list[tuple[str, dict[str, np.ndarray]]]
) -> None:
    enc = _encoder(folders["openclip"])
    enc.encode_texts_sync(["a red circle"])
    fed = next(f for g, f in feeds if g == "textual")
    assert set(fed) == {"text"}
    # CLIP: <|startoftext|> a red circle <|endoftext|>, padded with <|endoftext|> (49407).
    assert fed["text"][0].tolist() == [49406, 320, 736, 7117, 49407] + [49407] * 11


def test_nllb_gets_the_language_code_first(
    folders: dict[str, Path], feeds: list[tuple[str, dict[str, np.ndarray]]]
) -> None:
    folder = folders["nllb"]
    enc = _encoder(folder, "nllb-clip-base-siglip__v1")
    tok = Tokenizer.from_file(str(folder / "textual/tokenizer.json"))
    zh = asyncio.run(enc.encode_texts(["红色的圆形"], language="zh"))
    en = asyncio.run(enc.encode_texts(["红色的圆形"]))
    fed = [f["text"][0] for g, f in feeds if g == "textual"]
    assert fed[0][0] == tok.token_to_id("zho_Hans")
    assert fed[1][0] == tok.token_to_id("eng_Latn")  # no language: English, as Immich
    assert fed[0][1:].tolist()[:4] == fed[1][1:].tolist()[:4]
    assert not np.allclose(zh, en)


def _reference(img: Image.Image, size: int, crop: bool, mean: float, std: float) -> np.ndarray:
    """numpy/Pillow reference: resize (shortest side + centre crop, or both sides), scale."""
    if crop:
        w, h = img.size
        scale = size / min(w, h)
        nw, nh = (size, int(h * scale)) if w <= h else (int(w * scale), size)
        big = img.resize((nw, nh), Image.Resampling.BICUBIC)
        left, top = round((nw - size) / 2), round((nh - size) / 2)
        img = big.crop((left, top, left + size, top + size))
    else:
        img = img.resize((size, size), Image.Resampling.BICUBIC)
    arr = np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0
    return (arr - mean) / std


def test_preprocessing_follows_the_config(
    folders: dict[str, Path], feeds: list[tuple[str, dict[str, np.ndarray]]]
) -> None:
    """A 60x20 picture, left third red, the rest blue: SigLIP squashes it (red kept), CLIP
    centre-crops it (red cut away); both match the Pillow reference and feed ``image``."""
    arr = np.zeros((20, 60, 3), dtype=np.uint8)
    arr[:, :20] = (255, 0, 0)
    arr[:, 20:] = (0, 0, 255)
    img = Image.fromarray(arr)
    siglip = _encoder(folders["siglip"]).preprocess(img)
    clip = _encoder(folders["openclip"]).preprocess(img)
    np.testing.assert_allclose(siglip, _reference(img, 24, False, 0.5, 0.5), atol=1e-5)
    assert siglip.shape == clip.shape == (3, 24, 24)
    mean = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)[:, None, None]
    std = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)[:, None, None]
    clip_ref = (_reference(img, 24, True, 0.0, 1.0) - mean) / std
    np.testing.assert_allclose(clip, clip_ref, atol=1e-5)
    # The red channel of the first column, un-normalised.
    assert (siglip[0, :, 0] * 0.5 + 0.5).mean() > 0.9  # the red left third survives a squash
    assert (clip[0, :, 0] * std[0, 0, 0] + mean[0, 0, 0]).mean() < 0.1  # CLIP crops it away
    enc = _encoder(folders["siglip"])
    enc.encode_pixels(siglip[None])
    fed = next(f for g, f in feeds if g == "visual")
    assert set(fed) == {"image"}
    np.testing.assert_array_equal(fed["image"][0], siglip)


def test_sigmoid_score() -> None:
    from clipsearch.encoder.model_config import ModelConfig

    cos = ModelConfig(name="x")
    sig = ModelConfig(name="x", score="sigmoid", logit_scale=np.log(10.0), logit_bias=-5.0)
    assert score_from_cosine(0.3, cos) == 0.3
    assert score_from_cosine(0.5, sig) == pytest.approx(0.5)
    assert score_from_cosine(0.9, sig) > score_from_cosine(0.3, sig)
    # Without the trained scale and bias the sigmoid is not calibrated: the cosine stays.
    assert score_from_cosine(0.3, ModelConfig(name="x", score="sigmoid")) == 0.3


def test_fixed_batch_graph_runs_in_slices(tmp_path: Path) -> None:
    """A graph that fixes the batch at 2 gets 5 rows as 2+2+1 (the last slice padded, the
    padding's output dropped): the same vectors as one row at a time."""
    from tests.encoder.layout_fixtures import build_image_graph

    build_image_graph(tmp_path / "v.onnx", size=8, dim=6, seed=3, batch=2)
    session = OrtSession(tmp_path / "v.onnx")
    assert session.fixed_batch == 2
    rows = np.random.default_rng(0).standard_normal((5, 3, 8, 8)).astype(np.float32)
    out = session.run({"image": rows})
    assert out.shape == (5, 6)
    pairs = [session.run({"image": np.stack([r, r])})[0] for r in rows]
    np.testing.assert_allclose(out, np.stack(pairs), atol=1e-6)
