"""Tokenizers from ``tokenizer.json``: the ids the ``tokenizers`` reference gives, padded and
truncated as the model's config says; CLIP's BPE through a tokenizer.json equals ours."""

from __future__ import annotations

import gzip
import html
import json
from pathlib import Path

import ftfy
import numpy as np
import pytest
from tokenizers import Tokenizer

from clipsearch.encoder.hf_tokenizer import HfTokenizer, clean_text, flores_code
from clipsearch.encoder.protocol import EncoderError
from clipsearch.encoder.tokenizer import get_tokenizer
from tests.encoder.layout_fixtures import clip_bpe_tokenizer, unigram_tokenizer

FIXTURE = Path(__file__).parents[1] / "fixtures/tokenizer/clip_server_tokens.jsonl.gz"

SCRIPTS = [
    "a red circle",
    "Crème brûlée à la française, naïve façade, Ærøskøbing",
    "ÉLÈVE ÇA ÖL",
    "红色的连衣裙",
    "一只可爱的猫咪 金毛",
    "東京の夜 ひらがな カタカナ",
    "Красная площадь в Москве",
    "قطة صغيرة على الطاولة",
    "🐱🐶 ❤️ 🚗 👩‍👩‍👧",
    "  spaces\tand\nnewlines  ",
    "",
    "numbers 123 4.5 and punctuation!!! (really?)",
    "long " + "word " * 120,
    "超长的中文句子" * 30,
]


@pytest.fixture(scope="module")
def clip_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("clipbpe")
    clip_bpe_tokenizer().save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({"pad_token": "<|endoftext|>"}))
    return folder


def _clip_hf(folder: Path, pad_token: str | None = None) -> HfTokenizer:
    if pad_token is not None:
        (folder / "tokenizer_config.json").write_text(json.dumps({"pad_token": pad_token}))
    return HfTokenizer(
        folder / "tokenizer.json", folder / "tokenizer_config.json", context_length=77
    )


def test_clip_bpe_tokenizer_json_equals_clip_tokenizer(clip_json: Path) -> None:
    """Ids and masks equal the project's ClipTokenizer on several scripts, including
    truncation (the end token kept last) and the empty string; padding is the pad id."""
    hf = _clip_hf(clip_json)
    ours_ids, ours_mask = get_tokenizer().tokenize(SCRIPTS, 77)
    ids, mask = hf.tokenize(SCRIPTS)
    np.testing.assert_array_equal(mask, ours_mask)
    # ClipTokenizer pads with 0, the tokenizer.json with its pad token (CLIP's: EOT).
    eot = hf.pad_id
    assert eot == get_tokenizer().eot_id
    np.testing.assert_array_equal(np.where(mask == 1, ids, 0), ours_ids)
    assert (ids[mask == 0] == eot).all()
    long_row = SCRIPTS.index("long " + "word " * 120)
    assert mask[long_row].sum() == 77
    assert ids[long_row, -1] == eot


def test_clip_bpe_tokenizer_json_on_clip_servers_fixture(clip_json: Path) -> None:
    """On clip-server's own recorded ids, for the strings that ftfy and html unescaping
    leave unchanged (those two are clip-server's extras, not in a tokenizer.json): at least
    99% equal. Measured: 6 of 1057 differ, all fuzz strings (a combining mark after
    punctuation, an upper-case ``<|STARTOFTEXT|>``, which the project's tokenizer
    lower-cases into the special token); natural text in every script is equal above."""
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh]
    plain = [
        r
        for r in records
        if ftfy.fix_text(r["text"]) == r["text"] and html.unescape(r["text"]) == r["text"]
    ]
    assert len(plain) >= 0.8 * len(records)
    hf = _clip_hf(clip_json)
    ids, mask = hf.tokenize([r["text"] for r in plain])
    differ = [
        rec["text"]
        for row, rec in enumerate(plain)
        if ids[row, : int(mask[row].sum())].tolist() != [t for t in rec["input_ids"] if t]
    ]
    assert len(differ) <= 0.01 * len(plain), differ
    assert "<|STARTOFTEXT|>" in differ  # the known case: it proves the comparison bites


@pytest.fixture(scope="module")
def unigram(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("unigram")
    unigram_tokenizer().save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({"pad_token": "<pad>"}))
    return folder


def _reference(path: Path, texts: list[str], length: int) -> tuple[list[list[int]], list[int]]:
    """The ``tokenizers`` reference: encode with truncation, pad by hand with ``<pad>``."""
    ref = Tokenizer.from_file(str(path))
    ref.enable_truncation(max_length=length)
    pad = int(ref.token_to_id("<pad>") or 0)
    rows, lengths = [], []
    for text in texts:
        enc = ref.encode(" ".join(text.split()))
        rows.append(enc.ids + [pad] * (length - len(enc.ids)))
        lengths.append(len(enc.ids))
    return rows, lengths


@pytest.mark.parametrize("length", [8, 16, 64])
def test_unigram_ids_and_mask_equal_the_reference(unigram: Path, length: int) -> None:
    hf = HfTokenizer(
        unigram / "tokenizer.json", unigram / "tokenizer_config.json", context_length=length
    )
    ids, mask = hf.tokenize(SCRIPTS)
    rows, lengths = _reference(unigram / "tokenizer.json", SCRIPTS, length)
    assert ids.shape == mask.shape == (len(SCRIPTS), length)
    assert ids.tolist() == rows
    assert mask.sum(axis=1).tolist() == lengths
    # XLM-R's template: <s> first, </s> last (also when truncated).
    bos, eos = hf.token_id("<s>"), hf.token_id("</s>")
    assert (ids[:, 0] == bos).all()
    assert all(ids[r, n - 1] == eos for r, n in enumerate(lengths))
    assert hf.pad_id == hf.token_id("<pad>") != 0


def test_other_context_length_per_call_restores_default(unigram: Path) -> None:
    hf = HfTokenizer(unigram / "tokenizer.json", context_length=16)
    assert hf.pad_token == "<pad>"  # no tokenizer_config.json: <pad> by convention
    assert hf.tokenize(["a red circle"], 40)[0].shape == (1, 40)
    assert hf.tokenize(["a red circle"])[0].shape == (1, 16)


def test_canonicalize_cleaning() -> None:
    assert clean_text("  A  Red,\tCircle! ") == "A Red, Circle!"
    assert clean_text("  A  Red,\tCircle! ", canonicalize=True) == "a red circle"
    cjk = "红色的\uff0c圆形\u3002"  # fullwidth comma, ideographic full stop
    assert clean_text(cjk, canonicalize=True) == cjk  # only ASCII punctuation goes


def test_nllb_language_code_is_the_first_id(tmp_path: Path) -> None:
    unigram_tokenizer(languages=True).save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"pad_token": "<pad>"}))
    hf = HfTokenizer(
        tmp_path / "tokenizer.json",
        tmp_path / "tokenizer_config.json",
        context_length=16,
        language_prefix="flores200",
    )
    plain = HfTokenizer(tmp_path / "tokenizer.json", context_length=16)
    for language, code in [("zh", "zho_Hans"), ("ja", "jpn_Jpan"), (None, "eng_Latn")]:
        ids, mask = hf.tokenize(["红色的圆形"], language=language)
        base, base_mask = plain.tokenize(["红色的圆形"])
        assert ids[0, 0] == hf.token_id(code)
        n = int(base_mask.sum())
        # The code, then exactly the ids of the text alone (and its </s>).
        assert ids[0, 1 : n + 1].tolist() == base[0, :n].tolist()
        assert int(mask.sum()) == n + 1
    assert flores_code("zh-CN") == "zho_Hans"
    assert flores_code("zh-Hant") == "zho_Hant"
    assert flores_code("pt-BR") == "por_Latn"
    assert flores_code("deu_Latn") == "deu_Latn"
    assert flores_code("xx") == "eng_Latn"


def test_bad_tokenizer_files_are_encoder_errors(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(EncoderError, match="cannot read tokenizer"):
        HfTokenizer(tmp_path / "tokenizer.json", context_length=8)
    clip_bpe_tokenizer().save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"pad_token": "<nope>"}))
    with pytest.raises(EncoderError, match="pad_token"):
        HfTokenizer(
            tmp_path / "tokenizer.json", tmp_path / "tokenizer_config.json", context_length=8
        )
