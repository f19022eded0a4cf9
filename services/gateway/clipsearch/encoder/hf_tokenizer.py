"""Tokenizers read from a model's ``tokenizer.json`` with the ``tokenizers`` package.

Used for Immich-layout models (XLM-R / LaBSE for M-CLIP, Gemma or T5 SentencePiece for
SigLIP, NLLB for NLLB-CLIP, CLIP's BPE for open_clip ones); no torch, no transformers.
What the tokenizer file says (normaliser, pre-tokeniser, model, special-token template) is
applied as is; on top, as Immich's machine-learning service does:

* the text is cleaned: whitespace collapsed, and with ``canonicalize`` (SigLIP's
  ``tokenizer_kwargs.clean``) punctuation removed and lower-cased;
* padding to the model's context length with ``tokenizer_config.json``'s ``pad_token`` and
  truncation to it (the template's special tokens stay: truncation makes room for them);
* NLLB-CLIP: the FLORES-200 code of the query's language is written before the text (the
  code is an added token of NLLB's tokenizer, so it becomes one id).
"""

from __future__ import annotations

import logging
import string
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from clipsearch.encoder.model_config import read_json_object
from clipsearch.encoder.protocol import EncoderError

log = logging.getLogger(__name__)

_PUNCTUATION = str.maketrans("", "", string.punctuation)

DEFAULT_LANGUAGE = "en"
# ISO 639-1 (with the script or region where it matters) -> FLORES-200, for NLLB-CLIP.
# Data: NLLB's language codes for the languages people commonly search in.
FLORES200: Mapping[str, str] = {
    "af": "afr_Latn",
    "ar": "arb_Arab",
    "be": "bel_Cyrl",
    "bg": "bul_Cyrl",
    "bn": "ben_Beng",
    "ca": "cat_Latn",
    "cs": "ces_Latn",
    "da": "dan_Latn",
    "de": "deu_Latn",
    "el": "ell_Grek",
    "en": "eng_Latn",
    "es": "spa_Latn",
    "et": "est_Latn",
    "fa": "pes_Arab",
    "fi": "fin_Latn",
    "fr": "fra_Latn",
    "he": "heb_Hebr",
    "hi": "hin_Deva",
    "hr": "hrv_Latn",
    "hu": "hun_Latn",
    "id": "ind_Latn",
    "it": "ita_Latn",
    "ja": "jpn_Jpan",
    "ko": "kor_Hang",
    "lt": "lit_Latn",
    "lv": "lvs_Latn",
    "ms": "zsm_Latn",
    "nb": "nob_Latn",
    "nl": "nld_Latn",
    "pl": "pol_Latn",
    "pt": "por_Latn",
    "ro": "ron_Latn",
    "ru": "rus_Cyrl",
    "sk": "slk_Latn",
    "sl": "slv_Latn",
    "sr": "srp_Cyrl",
    "sv": "swe_Latn",
    "ta": "tam_Taml",
    "th": "tha_Thai",
    "tr": "tur_Latn",
    "uk": "ukr_Cyrl",
    "ur": "urd_Arab",
    "vi": "vie_Latn",
    "zh": "zho_Hans",
    "zh-cn": "zho_Hans",
    "zh-hans": "zho_Hans",
    "zh-tw": "zho_Hant",
    "zh-hant": "zho_Hant",
}


def flores_code(language: str | None) -> str:
    """The FLORES-200 code for ``language`` (``zh``, ``zh-TW``, ``pt-BR`` or a FLORES code
    itself); an unknown language falls back to English, as Immich does, with a warning."""
    lang = (language or DEFAULT_LANGUAGE).strip()
    if lang in FLORES200.values():
        return lang
    key = lang.lower().replace("_", "-")
    code = FLORES200.get(key) or FLORES200.get(key.split("-", 1)[0])
    if code is None:
        log.warning("language %r has no FLORES-200 code here; using English", language)
        return FLORES200[DEFAULT_LANGUAGE]
    return code


def clean_text(text: str, *, canonicalize: bool = False) -> str:
    """Whitespace collapsed; with ``canonicalize`` also ASCII punctuation removed, lower-case."""
    text = " ".join(text.split())
    if canonicalize:
        text = text.translate(_PUNCTUATION).lower()
    return text


def _pad_token(config: Mapping[str, object], tokenizer: Tokenizer, where: Path | None) -> str:
    raw = config.get("pad_token")
    if isinstance(raw, dict):  # older transformers write an AddedToken as a dict
        raw = raw.get("content")
    if isinstance(raw, str) and tokenizer.token_to_id(raw) is not None:
        return raw
    padding = tokenizer.padding
    if padding and isinstance(padding.get("pad_token"), str):
        return str(padding["pad_token"])
    if raw is None and tokenizer.token_to_id("<pad>") is not None:
        return "<pad>"  # XLM-R's, NLLB's and SigLIP's pad token, by convention
    raise EncoderError(f"{where or 'tokenizer'}: no pad_token the tokenizer knows")


class HfTokenizer:
    """``tokenizer.json`` -> ``(ids, mask)`` int32 ``[B, context_length]``, like
    :class:`~clipsearch.encoder.tokenizer.ClipTokenizer`'s ``tokenize``."""

    def __init__(
        self,
        tokenizer_json: Path,
        tokenizer_config: Path | None = None,
        *,
        context_length: int,
        clean: str | None = None,
        language_prefix: str | None = None,
    ) -> None:
        try:
            self._tok = Tokenizer.from_file(str(tokenizer_json))
        except Exception as exc:  # the Rust side raises its own exception type
            raise EncoderError(f"cannot read tokenizer {tokenizer_json}: {exc}") from exc
        config: Mapping[str, object] = {}
        if tokenizer_config is not None and tokenizer_config.is_file():
            config = read_json_object(tokenizer_config)
        self.pad_token = _pad_token(config, self._tok, tokenizer_config)
        self.pad_id = int(self._tok.token_to_id(self.pad_token) or 0)
        self.context_length = context_length
        self.canonicalize = clean == "canonicalize"
        self.language_prefix = language_prefix
        self._configure(context_length)
        # A Tokenizer's padding/truncation settings are shared state: one caller at a time.
        self._lock = threading.Lock()

    def _configure(self, length: int) -> None:
        self._tok.enable_padding(length=length, pad_id=self.pad_id, pad_token=self.pad_token)
        self._tok.enable_truncation(max_length=length)

    def prepare(self, text: str, language: str | None = None) -> str:
        """The text as it is handed to the tokenizer (cleaned, maybe language-prefixed)."""
        text = clean_text(text, canonicalize=self.canonicalize)
        if self.language_prefix == "flores200":
            text = flores_code(language) + text
        return text

    def token_id(self, token: str) -> int | None:
        found = self._tok.token_to_id(token)
        return int(found) if found is not None else None

    def tokenize(
        self,
        texts: Sequence[str],
        context_length: int | None = None,
        *,
        language: str | None = None,
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
        """``(input_ids, attention_mask)`` padded with the pad token to ``context_length``."""
        length = context_length or self.context_length
        prepared = [self.prepare(t, language) for t in texts]
        with self._lock:
            if length != self.context_length:
                self._configure(length)
            try:
                encodings = self._tok.encode_batch(prepared)
            finally:
                if length != self.context_length:
                    self._configure(self.context_length)
        ids = np.array([e.ids for e in encodings], dtype=np.int32).reshape(len(texts), length)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int32)
        return ids, mask.reshape(len(texts), length)
