"""The Encoder contract: what the gateway needs from CLIP, whichever runtime computes it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from clipsearch.core.errors import InvalidRequest

if TYPE_CHECKING:
    from PIL import Image

Vectors = npt.NDArray[np.float32]
# One picture as the model takes it: float32 [3, S, S], normalised.
PixelTensor = npt.NDArray[np.float32]


class EncoderError(Exception):
    """The encoder could not produce vectors (model missing, server down, bad answer)."""


class ImageDecodeError(InvalidRequest, ValueError):
    """An input could not be decoded as an allowed image (corrupt, bomb, wrong format).

    The input's fault, so an :class:`InvalidRequest`; ``code`` is ``invalid_image``, or
    ``image_too_large`` for a picture over the pixel limit (a decompression bomb).
    """

    code = "invalid_image"


@runtime_checkable
class Encoder(Protocol):
    """Turns texts and images into L2-normalised float32 vectors of ``dim`` dimensions.

    Implementations never block the event loop: CPU or network work runs in a thread pool
    or an async client. ``fingerprint`` identifies the model weights, so that a collection
    built with one model is never searched with another.
    """

    mode: str
    model_name: str

    @property
    def dim(self) -> int: ...

    @property
    def fingerprint(self) -> str: ...

    async def encode_texts(self, texts: Sequence[str]) -> Vectors: ...

    async def encode_images(self, images: Sequence[bytes]) -> Vectors: ...

    async def health(self) -> None:
        """Raise :class:`EncoderError` if the encoder cannot answer now."""

    async def close(self) -> None: ...


@runtime_checkable
class PixelEncoder(Protocol):
    """An in-process encoder's fast path on pixels: the caller decodes a picture once (to
    validate it, make its thumbnail) and hands the decoded image over, instead of bytes that
    the encoder would decode again. All three methods block: call them in a worker thread.
    """

    def input_size(self) -> int:
        """Side of the model's square input: a decoder may decode at a reduced scale that
        keeps at least this (``decode_image(draft_size=...)``) without changing the vector."""

    def preprocess(self, image: Image.Image) -> PixelTensor:
        """An upright decoded picture -> the model's input tensor (resize, crop, normalise)."""

    def encode_pixels(self, pixels: npt.NDArray[np.float32]) -> Vectors:
        """A stack of :meth:`preprocess` outputs [B,3,S,S] -> [B,D] unit vectors."""


@runtime_checkable
class WrapsPixelEncoder(Protocol):
    """An encoder wrapper (metrics, fallback) that passes its inner pixel path on."""

    def pixel_encoder(self) -> PixelEncoder | None: ...


def pixel_path(encoder: Encoder) -> PixelEncoder | None:
    """The encoder's :class:`PixelEncoder` fast path, or None (a remote encoder decodes the
    bytes itself). A wrapper's own path comes first, so its measurements are kept."""
    if isinstance(encoder, WrapsPixelEncoder):
        return encoder.pixel_encoder()
    if isinstance(encoder, PixelEncoder):
        return encoder
    return None
