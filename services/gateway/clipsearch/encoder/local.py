"""The in-process CLIP encoder: ONNX Runtime on a model folder in clip-server's ONNX layout.

``ClipTextual`` and ``ClipVisual`` say what is computed (token ids → vector, pixels →
vector); :class:`~clipsearch.encoder.ort_session.OrtSession` says how it runs. The
:class:`LocalEncoder` loads both lazily under a lock, chunks batches, and runs every
inference in its own thread pool so the event loop never waits on the CPU.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import numpy.typing as npt

from clipsearch.core.config import Settings
from clipsearch.encoder.model_config import ModelConfig, fingerprint_files, read_model_config
from clipsearch.encoder.model_files import ModelFiles, image_size_for_name, resolve_model_files
from clipsearch.encoder.ort_session import OrtSession
from clipsearch.encoder.preprocess import load_and_preprocess
from clipsearch.encoder.preprocess import preprocess as preprocess_pixels
from clipsearch.encoder.protocol import EncoderError, PixelTensor, Vectors
from clipsearch.encoder.tokenizer import ClipTokenizer, get_tokenizer

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)
T = TypeVar("T")
TokenIds = npt.NDArray[np.int32]


def l2_normalise(x: npt.NDArray[np.float32]) -> Vectors:
    """Rows scaled to unit length (a zero row stays zero instead of becoming NaN)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    out: Vectors = (x / np.maximum(norms, np.float32(1e-12))).astype(np.float32, copy=False)
    return out


class ClipTextual:
    """CLIP's text tower: token ids and attention mask [B,L] → L2-normalised [B,D].

    If the graph's sequence axis is dynamic, padding is trimmed to the longest real
    sequence in the batch (CLIP's text tower is causal and pools at the end-of-text token,
    so the result is the same and much cheaper); if it is fixed, batches are padded to it.
    """

    def __init__(self, session: OrtSession) -> None:
        self.session = session
        shape = session.input_shape("input_ids")
        session.input_shape("attention_mask")  # clip-server always feeds it: require it too.
        seq = shape[1] if len(shape) == 2 else None
        self.fixed_length: int | None = seq if isinstance(seq, int) else None

    @property
    def dynamic(self) -> bool:
        return self.fixed_length is None

    def encode(self, ids: TokenIds, mask: TokenIds) -> Vectors:
        length = int(mask.sum(axis=1).max()) if len(mask) else 1
        if self.fixed_length is not None:
            length = self.fixed_length
        ids, mask = _fit(ids, length), _fit(mask, length)
        return l2_normalise(self.session.run({"input_ids": ids, "attention_mask": mask}))


def _fit(a: TokenIds, length: int) -> TokenIds:
    """Cut or zero-pad the sequence axis to ``length``."""
    if a.shape[1] >= length:
        return a[:, :length]
    pad = np.zeros((a.shape[0], length - a.shape[1]), dtype=a.dtype)
    return np.concatenate([a, pad], axis=1)


class ClipVisual:
    """CLIP's image tower: normalised pixels float32 [B,3,S,S] → L2-normalised [B,D]."""

    def __init__(self, session: OrtSession) -> None:
        self.session = session
        shape = session.input_shape("pixel_values")
        side = shape[-1] if len(shape) == 4 else None
        self.graph_image_size: int | None = side if isinstance(side, int) else None

    def encode(self, pixels: npt.NDArray[np.float32]) -> Vectors:
        return l2_normalise(self.session.run({"pixel_values": pixels}))


@dataclass(frozen=True)
class _Loaded:
    textual: ClipTextual
    visual: ClipVisual
    config: ModelConfig  # every field filled in


class LocalEncoder:
    """The :class:`~clipsearch.encoder.protocol.Encoder` that runs CLIP in this process.

    Async methods hand each chunk of ``batch_size`` items to a dedicated thread pool; the
    sync methods (``encode_pixels``, ``encode_token_batch``, ``tokenize``) run in the
    caller's thread, for the ingest pipeline's own workers.
    """

    mode = "local"

    def __init__(
        self,
        files: ModelFiles,
        *,
        model_name: str,
        batch_size: int = 32,
        threads: int = 0,
        max_pixels: int = 40_000_000,
        workers: int = 2,
    ) -> None:
        self.files = files
        self._config = read_model_config(files.folder, model_name)
        self.model_name = self._config.name
        self.batch_size = batch_size
        self.threads = threads
        self.max_pixels = max_pixels
        self._lock = threading.Lock()
        self._loaded: _Loaded | None = None
        # Two workers: a short text query can run while an image chunk is in progress,
        # instead of queueing behind a whole ingest batch.
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="clip-enc")
        self._tokenizer: ClipTokenizer | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalEncoder:
        """Resolve (maybe download) the model folder; the ONNX sessions load on first use."""
        files = resolve_model_files(settings)
        return cls(
            files,
            model_name=settings.model_name,
            batch_size=settings.encoder_batch_size,
            threads=settings.encoder_threads,
            max_pixels=settings.max_pixels,
        )

    # --- loading -------------------------------------------------------------------------
    def load(self) -> _Loaded:
        """Load both sessions once (thread-safe); later calls return the loaded model."""
        loaded = self._loaded
        if loaded is not None:
            return loaded
        with self._lock:
            if self._loaded is None:
                self._loaded = self._load_now()
            return self._loaded

    def _load_now(self) -> _Loaded:
        textual = ClipTextual(OrtSession(self.files.textual, threads=self.threads))
        visual = ClipVisual(OrtSession(self.files.visual, threads=self.threads))
        cfg = self._config
        size = cfg.image_size or visual.graph_image_size or image_size_for_name(cfg.name)
        if size is None:
            raise EncoderError(
                f"cannot tell the image size of {self.files.folder}: its graph input is "
                f"dynamic and {cfg.name!r} is not a known model name; add clipsearch.json"
            )
        dim = cfg.dim or visual.session.output_dim or textual.session.output_dim
        if dim is None:
            # Neither graph fixes its output width: ask it once with a blank image.
            probe = np.zeros((1, 3, size, size), dtype=np.float32)
            dim = int(visual.encode(probe).shape[1])
        context = textual.fixed_length or cfg.context_length
        fingerprint = cfg.fingerprint or fingerprint_files(self.files.textual, self.files.visual)
        full = cfg.with_(image_size=size, dim=dim, context_length=context, fingerprint=fingerprint)
        log.info(
            "loaded %s from %s: dim=%d image_size=%d text=%s",
            full.name,
            self.files.folder,
            dim,
            size,
            "dynamic" if textual.dynamic else f"fixed {context}",
        )
        return _Loaded(textual, visual, full)

    @property
    def config(self) -> ModelConfig:
        return self.load().config

    @property
    def dim(self) -> int:
        return self._config.dim or int(self.config.dim or 0)

    @property
    def fingerprint(self) -> str:
        return self._config.fingerprint or str(self.config.fingerprint)

    @property
    def image_size(self) -> int:
        return int(self.config.image_size or 0)

    @property
    def dynamic_text_length(self) -> bool:
        return self.load().textual.dynamic

    # --- sync API (caller's thread) ------------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> tuple[TokenIds, TokenIds]:
        """CLIP BPE ids and mask, int32 [B, context_length] (trimmed later, per chunk)."""
        if self._tokenizer is None:
            self._tokenizer = get_tokenizer()
        return self._tokenizer.tokenize(texts, self.config.context_length)

    def encode_token_batch(self, ids: TokenIds, mask: TokenIds) -> Vectors:
        """One text forward pass on [B,L] ids/mask (no chunking): [B,D] unit vectors."""
        return self.load().textual.encode(ids, mask)

    def encode_pixels(self, pixels: npt.NDArray[np.float32]) -> Vectors:
        """Preprocessed pixels [B,3,S,S] → [B,D] unit vectors, chunked to ``batch_size``."""
        visual = self.load().visual
        if len(pixels) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [
            visual.encode(pixels[i : i + self.batch_size])
            for i in range(0, len(pixels), self.batch_size)
        ]
        return np.concatenate(parts, axis=0)

    def input_size(self) -> int:
        """Side of the square model input (the :class:`PixelEncoder` contract)."""
        return self.image_size

    def preprocess(self, image: Image.Image) -> PixelTensor:
        """An upright decoded picture -> float32 [3,S,S] with this model's size and norm."""
        cfg = self.config
        return preprocess_pixels(image, int(cfg.image_size or 0), cfg.mean, cfg.std)

    def preprocess_image(self, data: bytes) -> npt.NDArray[np.float32]:
        """Image bytes → float32 [3,S,S]; raises ImageDecodeError for bad images."""
        cfg = self.config
        pixels, _info = load_and_preprocess(
            data, int(cfg.image_size or 0), self.max_pixels, cfg.mean, cfg.std
        )
        return pixels

    def encode_texts_sync(self, texts: Sequence[str]) -> Vectors:
        """Tokenize and encode, chunked; texts are grouped by length so trimming pays off."""
        ids, mask = self.tokenize(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for idx in self._length_chunks(mask):
            out[idx] = self.encode_token_batch(ids[idx], mask[idx])
        return out

    def _length_chunks(self, mask: TokenIds) -> list[npt.NDArray[np.intp]]:
        """Row indices in chunks of ``batch_size``, shortest texts first: a chunk of similar
        lengths trims to less padding. Results go back to their rows, so order is kept."""
        order = np.argsort(mask.sum(axis=1), kind="stable")
        return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    # --- async API (thread pool) ---------------------------------------------------------
    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def encode_texts(self, texts: Sequence[str]) -> Vectors:
        """Texts → [N,D] unit vectors; every forward pass runs in the encoder's pool."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        await self._run(self.load)
        ids, mask = await self._run(partial(self.tokenize, texts))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for idx in self._length_chunks(mask):
            out[idx] = await self._run(partial(self.encode_token_batch, ids[idx], mask[idx]))
        return out

    async def encode_images(self, images: Sequence[bytes]) -> Vectors:
        """Image bytes → [N,D] unit vectors; decoding and inference both run in the pool.

        Raises :class:`~clipsearch.encoder.protocol.ImageDecodeError` for the first bad image.
        """
        images = list(images)
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        await self._run(self.load)
        parts: list[Vectors] = []
        for i in range(0, len(images), self.batch_size):
            chunk = images[i : i + self.batch_size]
            parts.append(await self._run(partial(self._encode_image_chunk, chunk)))
        return np.concatenate(parts, axis=0)

    def _encode_image_chunk(self, chunk: Sequence[bytes]) -> Vectors:
        pixels = np.stack([self.preprocess_image(data) for data in chunk])
        return self.load().visual.encode(pixels)

    async def health(self) -> None:
        """Load the model if needed; raise :class:`EncoderError` if it cannot be loaded."""
        await self._run(self.load)

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            self._loaded = None
