"""Query expansion and weighted text queries: which texts a text query encodes, and how.

A text query is one or more *terms* with weights: a plain query is one term of weight 1; a
weighted query (``{"a red circle": 1.0, "on the left": -0.3}``, as Marqo takes them) is up to
``max_query_terms`` terms. With ``expand``, each term is looked up in the expansion
dictionary (:class:`ExpansionDictionary`, a JSON file; the setting
``CLIPSEARCH_EXPANSIONS_FILE``, by default the packaged ``data/expansions.zh.json``):

1. **Whole term first.** If the whole (normalised) term is a dictionary key, its expansions
   are encoded beside it (``金毛`` -> ``golden retriever dog``).
2. **Otherwise longest match inside it.** The term is scanned left to right; at each position
   the longest key that starts there is taken (forward maximum matching, the usual way to
   segment Chinese without spaces), else the scan moves one character on. A key whose first
   or last character is a Latin letter or digit matches only at word boundaries (``cat`` is
   not found in ``category``). If any key matched, *one* extra text is encoded: the first
   expansion of every matched key, in query order, joined by spaces
   (``左边一个小的红色圆形`` -> ``on the left a small red circle``). Unmatched characters are
   left out of it; they are still in the term itself, which is always encoded too.

Every text of a request goes to the encoder in one batch (repeats encoded once). A term's
vector is the mean of the L2-normalised vectors of the term and its expansions,
renormalised; a query's vector is the weighted sum of its terms' vectors, renormalised. A
plain query without expansion keeps the encoder's vector exactly.

This module knows nothing of HTTP; :mod:`clipsearch.usecases.search` calls it.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np

from clipsearch.core.errors import InvalidRequest
from clipsearch.usecases.common import check_text

# A dictionary entry with more expansions than this is refused when the file is loaded:
# the texts encoded per query stay bounded by the request limits.
MAX_EXPANSIONS_PER_KEY = 8
# Below this norm a weighted sum is no direction at all (terms cancelling out).
_MIN_NORM = 1e-6


def default_dictionary_path() -> Path:
    """The packaged default dictionary (Chinese demo and photo words -> English)."""
    return Path(str(resources.files("clipsearch") / "data" / "expansions.zh.json"))


def _norm_key(text: str) -> str:
    """The form dictionary keys and queries are compared in: NFKC, case-folded, spaces
    collapsed (NFKC turns full-width letters and digits into ASCII ones)."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _is_word_char(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


class ExpansionDictionary:
    """Term -> expansions, loaded from ``{"term": "expansion" | ["expansion", ...], ...}``."""

    def __init__(self, entries: Mapping[str, Sequence[str]]) -> None:
        self._entries: dict[str, tuple[str, ...]] = {}
        for key, values in entries.items():
            norm = _norm_key(key)
            cleaned = tuple(" ".join(v.split()) for v in values)
            if not norm or not cleaned or not all(cleaned):
                raise ValueError(f"expansion entry {key!r}: key and expansions must be non-empty")
            if len(cleaned) > MAX_EXPANSIONS_PER_KEY:
                raise ValueError(
                    f"expansion entry {key!r} has {len(cleaned)} expansions, "
                    f"more than {MAX_EXPANSIONS_PER_KEY}"
                )
            self._entries[norm] = cleaned
        self._longest = max((len(k) for k in self._entries), default=0)

    @classmethod
    def from_file(cls, path: Path) -> ExpansionDictionary:
        """Load a JSON dictionary; a broken file is a :class:`ValueError` naming the file."""
        try:
            raw: Any = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"expansions file {path}: {exc}") from exc
        if not isinstance(raw, dict):
            raise ValueError(f"expansions file {path}: the top level must be a JSON object")
        entries: dict[str, list[str]] = {}
        for key, value in raw.items():
            values = [value] if isinstance(value, str) else value
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise ValueError(
                    f"expansions file {path}: {key!r} must map to a string or a list of strings"
                )
            entries[key] = values
        try:
            return cls(entries)
        except ValueError as exc:
            raise ValueError(f"expansions file {path}: {exc}") from exc

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, text: str) -> Expanded | None:
        """What ``text`` expands to (whole match first, then longest matches), or ``None``."""
        norm = _norm_key(text)
        whole = self._entries.get(norm)
        if whole is not None:
            return Expanded(text, "query", ((norm, whole[0]),), whole)
        found: list[tuple[str, str]] = []
        i = 0
        while i < len(norm):
            for end in range(min(len(norm), i + self._longest), i, -1):
                key = norm[i:end]
                if key in self._entries and self._at_boundaries(norm, i, end):
                    found.append((key, self._entries[key][0]))
                    i = end
                    break
            else:
                i += 1
        if not found:
            return None
        rewrite = " ".join(expansion for _, expansion in found)
        return Expanded(text, "terms", tuple(found), (rewrite,))

    @staticmethod
    def _at_boundaries(text: str, start: int, end: int) -> bool:
        if _is_word_char(text[start]) and start > 0 and _is_word_char(text[start - 1]):
            return False
        return not (_is_word_char(text[end - 1]) and end < len(text) and _is_word_char(text[end]))


@dataclass(frozen=True, slots=True)
class Expanded:
    """What expansion did to one term: ``texts`` were encoded beside ``text``.

    ``matched`` is ``"query"`` (the whole term is a key) or ``"terms"`` (keys found inside
    it); ``terms`` lists ``(key, expansion used)``.
    """

    text: str
    matched: Literal["query", "terms"]
    terms: tuple[tuple[str, str], ...]
    texts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TextQuery:
    """One text query: ``terms`` are ``(text, weight)``; a plain query is ``((text, 1.0),)``."""

    terms: tuple[tuple[str, float], ...]
    expand: bool = False
    weighted: bool = False


@dataclass
class TextPlan:
    """The texts to encode in one batch and how to fold their vectors back into queries."""

    texts: list[str] = field(default_factory=list)
    # Per query: (weight, indices into ``texts`` of the term and its expansions) per term.
    rows: list[list[tuple[float, list[int]]]] = field(default_factory=list)
    # Per query: the expansions used (None where the query did not ask for expansion).
    expansions: list[list[Expanded] | None] = field(default_factory=list)
    _index: dict[str, int] = field(default_factory=dict)

    def _add(self, text: str) -> int:
        if text not in self._index:
            self._index[text] = len(self.texts)
            self.texts.append(text)
        return self._index[text]

    def combine(self, vectors: np.ndarray) -> np.ndarray:
        """``[len(texts), D]`` encoder vectors -> ``[len(rows), D]`` query vectors."""
        out = np.zeros((len(self.rows), vectors.shape[1]), dtype=np.float32)
        for q, row in enumerate(self.rows):
            if len(row) == 1 and row[0][0] == 1.0 and len(row[0][1]) == 1:
                out[q] = vectors[row[0][1][0]]  # a plain query: the encoder's vector as is
                continue
            total = np.zeros(vectors.shape[1], dtype=np.float64)
            for weight, indices in row:
                total += weight * _unit(_unit_rows(vectors[indices]).mean(axis=0))
            norm = float(np.linalg.norm(total))
            if not norm > _MIN_NORM:
                raise InvalidRequest(
                    "the weighted terms cancel out: their weighted sum has no direction",
                    code="degenerate_query",
                    details={"query": q},
                )
            out[q] = (total / norm).astype(np.float32)
        return out


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def _unit_rows(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return np.asarray(m / np.where(norms > 0, norms, 1.0), dtype=np.float64)


class QueryExpander:
    """Validates text queries and plans their encoding (see the module docstring)."""

    def __init__(
        self,
        dictionary: ExpansionDictionary,
        *,
        max_terms: int,
        max_chars: int,
        max_texts: int,
    ) -> None:
        self.dictionary = dictionary
        self._max_terms = max_terms
        self._max_chars = max_chars
        self._max_texts = max_texts

    def plan(self, queries: Sequence[TextQuery]) -> TextPlan:
        """A :class:`TextPlan` for ``queries``; bad input raises :class:`InvalidRequest`."""
        plan = TextPlan()
        for q in queries:
            terms = self._check_terms(q)
            row: list[tuple[float, list[int]]] = []
            used: list[Expanded] = []
            for text, weight in terms:
                indices = [plan._add(text)]
                if q.expand:
                    expanded = self.dictionary.lookup(text)
                    if expanded is not None:
                        used.append(expanded)
                        indices += [plan._add(t) for t in expanded.texts]
                row.append((weight, indices))
            plan.rows.append(row)
            plan.expansions.append(used if q.expand else None)
        if len(plan.texts) > self._max_texts:
            raise InvalidRequest(
                f"the queries need {len(plan.texts)} texts encoded, "
                f"more than the limit of {self._max_texts}",
                code="too_many_terms",
                details={"max_texts": self._max_texts},
            )
        return plan

    def _check_terms(self, q: TextQuery) -> list[tuple[str, float]]:
        if not q.terms:
            raise InvalidRequest("a weighted query needs at least one term", code="empty_query")
        if len(q.terms) > self._max_terms:
            raise InvalidRequest(
                f"{len(q.terms)} weighted terms, more than the limit of {self._max_terms}",
                code="too_many_terms",
                details={"max_query_terms": self._max_terms},
            )
        merged: dict[str, float] = {}
        for text, weight in q.terms:
            if isinstance(weight, bool) or not isinstance(weight, int | float):
                raise InvalidRequest("a term's weight must be a number", code="invalid_weight")
            if not math.isfinite(weight):
                raise InvalidRequest("a term's weight must be finite", code="invalid_weight")
            norm = check_text(text, max_chars=self._max_chars, what="query")
            merged[norm] = merged.get(norm, 0.0) + float(weight)  # "a  cat" and "a cat": one
        if q.weighted and not sum(merged.values()) > 0:
            raise InvalidRequest(
                "the weights of a weighted query must sum to more than 0",
                code="invalid_weights",
                details={"sum": sum(merged.values())},
            )
        return list(merged.items())
