"""The bilingual tiny CLIP's tokenizer: a WordPiece trained here with `tokenizers`.

BERT-style normalisation (lower case, accents kept, a space around every CJK character, so
each Chinese character is its own word), BERT pre-tokenisation (whitespace and punctuation),
WordPiece over the training captions of both languages, and ``[CLS] ... [SEP]`` around every
text. ``a``-``z`` and ``0``-``9`` are in the alphabet, so an English word never seen in training
falls back to word pieces instead of ``[UNK]``; an unseen Chinese character is ``[UNK]``.
The special ids are fixed: ``[PAD]`` 0, ``[UNK]`` 1, ``[CLS]`` 2, ``[SEP]`` 3.
"""

from __future__ import annotations

import string
from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from tokenizers.trainers import WordPieceTrainer

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
PAD_TOKEN = "[PAD]"


def train_tokenizer(texts: Iterable[str], vocab_size: int = 512) -> Tokenizer:
    """A WordPiece tokenizer fitted to ``texts`` (without padding; callers enable it)."""
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=True
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=list(string.ascii_lowercase + string.digits),
        continuing_subword_prefix="##",
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    return tokenizer


def padded(tokenizer: Tokenizer, context_length: int) -> Tokenizer:
    """``tokenizer`` padding and truncating to ``context_length``, as Immich loads it."""
    pad_id = tokenizer.token_to_id(PAD_TOKEN)
    tokenizer.enable_padding(length=context_length, pad_id=pad_id, pad_token=PAD_TOKEN)
    tokenizer.enable_truncation(max_length=context_length)
    return tokenizer
