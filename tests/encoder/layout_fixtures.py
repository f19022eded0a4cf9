"""Immich-layout model folders made at test time: tiny ONNX graphs and tokenizers, no torch.

Each kind has the I/O contract of Immich's exports (``immich_ml/models/clip``) with random
weights and a fixed batch of 1, as Immich exports them:

* ``openclip``: ``text`` int32 [1,L] -> [1,D] (CLIP BPE ``tokenizer.json``), ``image``.
* ``mclip``: ``input_ids`` + ``attention_mask`` int32 [1,L] (an XLM-R-like Unigram tokenizer).
* ``siglip``: ``text`` (Unigram, ``clean: canonicalize``), squash resize, mean/std 0.5,
  ``init_logit_bias`` in config.json (sigmoid scores).
* ``nllb``: ``text`` with FLORES-200 codes as added tokens before the text.

The text graphs embed the ids and mean-pool (the masked one over the mask); the image graph
is a global average pool and a matrix, so every input value reaches the output.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import (
    AddedToken,
    Regex,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)

from clipsearch.encoder.tokenizer import EOT, SOT, get_tokenizer

# A few sentences per script for the trained tokenizers (they need to see every script).
CORPUS = [
    "a red circle on the left",
    "a small blue square above a yellow star",
    "une voiture rouge près de la mer, été à Noël",
    "ein großer Hund läuft über die Straße",
    "красная машина около моря",
    "قطة صغيرة على الطاولة",
    "红色的圆形 左边一个蓝色的正方形 金毛 一只可爱的猫咪",
    "赤い丸 ひらがな カタカナ 東京の夜",
    "빨간 원 고양이",
    "🐱 🐶 ❤️ 🚗",
]
LANG_CODES = ["eng_Latn", "zho_Hans", "fra_Latn", "rus_Cyrl", "jpn_Jpan"]


def clip_bpe_tokenizer() -> Tokenizer:
    """CLIP's BPE as a ``tokenizer.json`` would hold it (Hugging Face's CLIPTokenizerFast
    layout), built from the project's own vocabulary, so no download is needed."""
    clip = get_tokenizer()
    merges = sorted(clip.ranks, key=clip.ranks.__getitem__)
    model = models.BPE(
        vocab=dict(clip.encoder),
        merges=[(a, b) for a, b in merges],
        end_of_word_suffix="</w>",
        continuing_subword_prefix="",
        unk_token=EOT,
        fuse_unk=False,
    )
    tok = Tokenizer(model)
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    pattern = (
        r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]"
        r"|[^\s\p{L}\p{N}]+"
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(pattern), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(SOT, special=True), AddedToken(EOT, special=True)])
    tok.post_processor = processors.TemplateProcessing(
        single=f"{SOT} $A {EOT}",
        special_tokens=[(SOT, clip.sot_id), (EOT, clip.eot_id)],
    )
    return tok


def unigram_tokenizer(*, vocab_size: int = 400, languages: bool = False) -> Tokenizer:
    """An XLM-R / SentencePiece-like Unigram tokenizer trained on :data:`CORPUS`:
    ``<s> $A </s>``, pad ``<pad>``; with ``languages`` NLLB-like (``$A </s>`` and the
    FLORES-200 codes as added special tokens)."""
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=specials, unk_token="<unk>"
    )
    tok.train_from_iterator(CORPUS * 3, trainer=trainer)
    if languages:
        tok.add_special_tokens([AddedToken(code, special=True) for code in LANG_CODES])
        tok.post_processor = processors.TemplateProcessing(
            single="$A </s>", special_tokens=[("</s>", tok.token_to_id("</s>"))]
        )
    else:
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>",
            special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))],
        )
    return tok


def _save(graph: onnx.GraphProto, path: Path) -> None:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)


def build_text_graph(
    path: Path, *, masked: bool, vocab: int, dim: int, seq: int, seed: int, batch: int = 1
) -> None:
    """``text`` [batch,seq] (mean over all positions) or ``input_ids``+``attention_mask``
    (mean over the mask) -> [batch, dim]."""
    rng = np.random.default_rng(seed)
    hidden = 8
    inits = [
        numpy_helper.from_array(
            rng.standard_normal((vocab, hidden)).astype(np.float32), name="tok_emb"
        ),
        numpy_helper.from_array(rng.standard_normal((hidden, dim)).astype(np.float32), name="w"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), name="axis1"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), name="axis2"),
    ]
    out = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [batch, dim])
    if masked:
        inputs = [
            helper.make_tensor_value_info(n, TensorProto.INT32, [batch, seq])
            for n in ("input_ids", "attention_mask")
        ]
        nodes = [
            helper.make_node("Gather", ["tok_emb", "input_ids"], ["emb"]),
            helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["maskf", "axis2"], ["mask3"]),
            helper.make_node("Mul", ["emb", "mask3"], ["masked"]),
            helper.make_node("ReduceSum", ["masked", "axis1"], ["summed"], keepdims=0),
            helper.make_node("ReduceSum", ["maskf", "axis1"], ["count"], keepdims=1),
            helper.make_node("Div", ["summed", "count"], ["pooled"]),
        ]
    else:
        inputs = [helper.make_tensor_value_info("text", TensorProto.INT32, [batch, seq])]
        nodes = [
            helper.make_node("Gather", ["tok_emb", "text"], ["emb"]),
            helper.make_node("ReduceMean", ["emb"], ["pooled"], axes=[1], keepdims=0),
        ]
    nodes.append(helper.make_node("MatMul", ["pooled", "w"], ["embedding"]))
    _save(helper.make_graph(nodes, "textual", inputs, [out], initializer=inits), path)


def build_image_graph(path: Path, *, size: int, dim: int, seed: int, batch: int = 1) -> None:
    """``image`` float32 [batch,3,size,size] -> per-channel means, a 3 x dim matrix."""
    rng = np.random.default_rng(seed)
    pix = helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, 3, size, size])
    out = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [batch, dim])
    w = rng.standard_normal((3, dim)).astype(np.float32)
    nodes = [
        helper.make_node("GlobalAveragePool", ["image"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "w"], ["embedding"]),
    ]
    init = [numpy_helper.from_array(w, name="w")]
    _save(helper.make_graph(nodes, "visual", [pix], [out], initializer=init), path)


KINDS = ("openclip", "mclip", "siglip", "nllb")
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def build_immich_dir(
    folder: Path, kind: str, *, dim: int = 12, size: int = 24, seq: int = 16, seed: int = 0
) -> Path:
    """An Immich-layout folder of ``kind`` (one of :data:`KINDS`)."""
    assert kind in KINDS, kind
    textual, visual = folder / "textual", folder / "visual"
    textual.mkdir(parents=True, exist_ok=True)
    visual.mkdir(parents=True, exist_ok=True)
    if kind == "openclip":
        tok, pad = clip_bpe_tokenizer(), EOT
    else:
        tok, pad = unigram_tokenizer(languages=kind == "nllb"), "<pad>"
    tok.save(str(textual / "tokenizer.json"))
    (textual / "tokenizer_config.json").write_text(json.dumps({"pad_token": pad}))
    text_cfg: dict[str, object] = {"context_length": seq, "vocab_size": tok.get_vocab_size()}
    model_cfg: dict[str, object] = {
        "embed_dim": dim,
        "vision_cfg": {"image_size": size},
        "text_cfg": text_cfg,
    }
    pre: dict[str, object] = {
        "size": [size, size],
        "mode": "RGB",
        "mean": CLIP_MEAN,
        "std": CLIP_STD,
        "interpolation": "bicubic",
        "resize_mode": "shortest",
    }
    if kind == "siglip":
        text_cfg["tokenizer_kwargs"] = {"clean": "canonicalize"}
        model_cfg["init_logit_bias"] = -10
        pre.update(mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5], resize_mode="squash")
    if kind == "nllb":
        text_cfg["hf_tokenizer_name"] = "facebook/nllb-200-distilled-600M"
        pre.update(mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5], resize_mode="squash")
    (folder / "config.json").write_text(json.dumps(model_cfg))
    (visual / "preprocess_cfg.json").write_text(json.dumps(pre))
    build_text_graph(
        textual / "model.onnx",
        masked=kind == "mclip",
        vocab=tok.get_vocab_size(),
        dim=dim,
        seq=seq,
        seed=seed,
    )
    build_image_graph(visual / "model.onnx", size=size, dim=dim, seed=seed + 1)
    return folder
