"""Similarity use-case: one image against 1..N texts, scored as CLIP scores them.

Per text, the cosine of the image and text vectors, and the softmax over all the texts of
the cosines times CLIP's logit scale (100): what clip-server's ``/rank`` reports as
``clip_score_cosine`` and ``clip_score``, and what the seed embedding tool's
``compute_similarity`` returns. Both encoder modes go through the :class:`Encoder`
protocol (the image and the texts are encoded as for a search); a stored ``image_id``
reuses its stored vector, as an image search by id does. The scores stay in request order.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from clipsearch.core.config import Settings
from clipsearch.core.errors import InvalidRequest, Unavailable
from clipsearch.encoder.protocol import Encoder, EncoderError, PixelTensor, Vectors
from clipsearch.usecases.collections import Collections
from clipsearch.usecases.common import check_text, image_id_of, run_sync
from clipsearch.usecases.imaging import check_size, decode_base64, encode_pictures, inspect_image
from clipsearch.usecases.pixel_budget import shared_budget
from clipsearch.usecases.search import Query, SearchService

# CLIP's learned temperature, exp(4.6052) = 100 in the released models; clip-server's
# rank uses the same constant whatever the model.
LOGIT_SCALE = 100.0


def clip_scores(
    query: npt.NDArray[np.float32], candidates: npt.NDArray[np.float32]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``(cosine, softmax)`` of each candidate row against the ``query`` vector (all unit
    vectors): the cosine, and the softmax over the candidates of ``LOGIT_SCALE * cosine``."""
    cosine = candidates.astype(np.float64) @ query.astype(np.float64)
    return cosine, clip_softmax(cosine)


def clip_softmax(cosine: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The softmax over candidates of ``LOGIT_SCALE * cosine`` (clip-server's clip_score)."""
    logits = LOGIT_SCALE * np.asarray(cosine, dtype=np.float64)
    weights = np.exp(logits - logits.max())  # shifted: no overflow at any cosine
    out: npt.NDArray[np.float64] = weights / weights.sum()
    return out


@dataclass(frozen=True, slots=True)
class TextScore:
    text: str
    cosine: float
    softmax: float


@dataclass(frozen=True, slots=True)
class SimilarityResult:
    image_id: str
    scores: list[TextScore]
    took_ms: float


class SimilarityService:
    """Scores an image (file bytes, base64, or a stored ``image_id``) against texts."""

    def __init__(
        self,
        settings: Settings,
        encoder: Encoder,
        collections: Collections,
        search: SearchService,
    ) -> None:
        self._settings = settings
        self._encoder = encoder
        self._collections = collections
        self._search = search

    def check_texts(self, texts: Sequence[str]) -> list[str]:
        """The normalised texts, or :class:`InvalidRequest` (none, too many, one empty)."""
        limit = self._settings.max_similarity_texts
        if not texts:
            raise InvalidRequest("give at least one text to score", code="no_texts")
        if len(texts) > limit:
            raise InvalidRequest(
                f"{len(texts)} texts, more than the limit of {limit}",
                code="too_many_texts",
                details={"max_similarity_texts": limit},
            )
        cfg = self._settings
        return [check_text(t, max_chars=cfg.max_text_chars, what=f"texts[{i}]") for i, t in
                enumerate(texts)]  # fmt: skip

    async def score(self, collection: str, image: Query, texts: Sequence[str]) -> SimilarityResult:
        """Validates everything (texts, then the image) before any encoder call."""
        started = time.perf_counter()
        if image.kind not in ("image", "image_id"):
            raise InvalidRequest("give an image, not a text query", code="invalid_query")
        clean = self.check_texts(texts)
        if image.image_id is not None:
            # The stored vector is of the collection's model: the texts are encoded by it too.
            handle = await self._collections.resolve(collection)
            vector = (await self._search.stored_vectors(handle.group, [image.image_id]))[0]
            image_id = image.image_id
            text_vectors = await self._encoded(handle.encoder.encode_texts(clean))
        else:
            data = image.image
            if data is None:
                assert image.image_base64 is not None
                data = decode_base64(image.image_base64, max_bytes=self._settings.max_upload_bytes)
            pixels = await self._inspect(data)  # an undecodable picture fails before encoding
            text_vectors = await self._encoded(self._encoder.encode_texts(clean))
            vector = (await self._encoded(encode_pictures(self._encoder, [data], [pixels])))[0]
            image_id = image_id_of(data)
        cosine, softmax = clip_scores(vector, text_vectors)
        scores = [
            TextScore(text, float(c), float(s))
            for text, c, s in zip(clean, cosine, softmax, strict=True)
        ]
        return SimilarityResult(image_id, scores, (time.perf_counter() - started) * 1000.0)

    async def _inspect(self, data: bytes) -> PixelTensor | None:
        """Size and decode checks (as for a search by image); the model input if local."""
        cfg = self._settings
        check_size(data, max_bytes=cfg.max_upload_bytes)
        seen = await run_sync(
            inspect_image,
            data,
            max_pixels=cfg.max_pixels,
            budget=shared_budget(cfg.decode_budget_mpx),
            encoder=self._encoder,
        )
        return seen.pixels

    @staticmethod
    async def _encoded(work: Awaitable[Vectors]) -> Vectors:
        try:
            return await work
        except EncoderError as exc:
            raise Unavailable(f"encoder failed: {exc}", code="encoder_unavailable") from exc
