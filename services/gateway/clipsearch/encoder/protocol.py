"""The Encoder contract: what the gateway needs from CLIP, whichever runtime computes it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from clipsearch.core.errors import InvalidRequest

Vectors = npt.NDArray[np.float32]


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
