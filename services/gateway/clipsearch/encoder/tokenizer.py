"""CLIP's byte-level BPE tokenizer, written for this project.

It must give the same ids as clip-server's tokenizer (``tests/fixtures/tokenizer``
holds ids produced by clip-server itself). The vocabulary file is OpenAI CLIP's
``bpe_simple_vocab_16e6.txt.gz`` (MIT licence, see ``assets/NOTICE``).
"""

from __future__ import annotations

import gzip
import html
import threading
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources

import ftfy
import numpy as np
import numpy.typing as npt
import regex

SOT = "<|startoftext|>"
EOT = "<|endoftext|>"
CONTEXT_LENGTH = 77
_VOCAB_FILE = "bpe_simple_vocab_16e6.txt.gz"
# CLIP uses the first 48,894 merges of the file (49152 - 256 - 2).
_N_MERGES = 49152 - 256 - 2

_WORD_RE = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)
_SPACES_RE = regex.compile(r"\s+")


@lru_cache(maxsize=1)
def _byte_encoder() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable unicode characters."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codes), strict=True))


def _clean(text: str) -> str:
    text = str(ftfy.fix_text(text))
    # Twice: some scraped captions are double-escaped.
    text = html.unescape(html.unescape(text))
    return str(_SPACES_RE.sub(" ", text.strip())).strip()


class ClipTokenizer:
    """Text → CLIP token ids (lower-cased, ftfy-fixed, BPE), padded or truncated."""

    def __init__(self) -> None:
        raw = resources.files("clipsearch.encoder.assets").joinpath(_VOCAB_FILE).read_bytes()
        lines = gzip.decompress(raw).decode("utf-8").split("\n")[1 : _N_MERGES + 1]
        merges = [tuple(line.split()) for line in lines]
        byte_chars = list(_byte_encoder().values())
        vocab = byte_chars + [c + "</w>" for c in byte_chars]
        vocab += ["".join(m) for m in merges] + [SOT, EOT]
        self.encoder: dict[str, int] = {tok: i for i, tok in enumerate(vocab)}
        self.ranks: dict[tuple[str, ...], int] = {m: i for i, m in enumerate(merges)}
        self.sot_id = self.encoder[SOT]
        self.eot_id = self.encoder[EOT]
        self._cache: dict[str, list[str]] = {SOT: [SOT], EOT: [EOT]}
        self._lock = threading.Lock()

    def _bpe(self, token: str) -> list[str]:
        cached = self._cache.get(token)
        if cached is not None:
            return cached
        word: list[str] = [*token[:-1], token[-1] + "</w>"]
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            best = min(pairs, key=lambda p: self.ranks.get(p, 1 << 30))
            if best not in self.ranks:
                break
            first, second = best
            merged: list[str] = []
            i = 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        with self._lock:
            # The cache only grows with distinct words; bound it for long-running servers.
            if len(self._cache) < 100_000:
                self._cache[token] = word
        return word

    def encode(self, text: str) -> list[int]:
        """BPE ids of ``text`` without start/end tokens."""
        byte_enc = _byte_encoder()
        ids: list[int] = []
        for word in _WORD_RE.findall(_clean(text).lower()):
            chars = "".join(byte_enc[b] for b in word.encode("utf-8"))
            ids.extend(self.encoder[piece] for piece in self._bpe(chars))
        return ids

    def tokenize(
        self, texts: Sequence[str], context_length: int = CONTEXT_LENGTH
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
        """``(input_ids, attention_mask)``, int32 ``[B, context_length]``.

        Over-long texts are truncated with the end-of-text token kept last, as clip-server
        does (``truncate=True``).
        """
        ids = np.zeros((len(texts), context_length), dtype=np.int32)
        mask = np.zeros((len(texts), context_length), dtype=np.int32)
        for row, text in enumerate(texts):
            tokens = [self.sot_id, *self.encode(text), self.eot_id]
            if len(tokens) > context_length:
                tokens = tokens[:context_length]
                tokens[-1] = self.eot_id
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1
        return ids, mask


@lru_cache(maxsize=1)
def get_tokenizer() -> ClipTokenizer:
    """The shared tokenizer (loading the vocabulary takes ~0.3 s)."""
    return ClipTokenizer()
