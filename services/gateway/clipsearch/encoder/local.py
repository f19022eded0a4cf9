"""The in-process CLIP encoder: ONNX Runtime on a model folder (clip-server's or Immich's layout).

The towers in :mod:`clipsearch.encoder.towers` say what is computed (token ids → vector,
pixels → vector); a :class:`~clipsearch.encoder.session.Session` says how it runs (ONNX Runtime
or OpenVINO, by ``CLIPSEARCH_ENCODER_RUNTIME``); the
folder's :class:`~clipsearch.encoder.model_config.ModelConfig` says how text is tokenized
(CLIP BPE or the model's ``tokenizer.json``) and pictures are resized and normalised. The
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
from clipsearch.encoder.hf_tokenizer import HfTokenizer
from clipsearch.encoder.layouts import TOKENIZER_CONFIG, TOKENIZER_JSON
from clipsearch.encoder.model_config import ModelConfig, fingerprint_files, read_model_config
from clipsearch.encoder.model_files import ModelFiles, image_size_for_name, resolve_model_files
from clipsearch.encoder.preprocess import load_and_preprocess
from clipsearch.encoder.preprocess import preprocess as preprocess_pixels
from clipsearch.encoder.protocol import EncoderError, PixelTensor, Vectors
from clipsearch.encoder.session import FP32, INT8, session_factory
from clipsearch.encoder.tokenizer import ClipTokenizer, get_tokenizer
from clipsearch.encoder.towers import ClipVisual, TextTower, text_tower

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)
T = TypeVar("T")
TokenIds = npt.NDArray[np.int32]


@dataclass(frozen=True)
class _Loaded:
    textual: TextTower
    visual: ClipVisual
    config: ModelConfig  # every field filled in
    tokenizer: ClipTokenizer | HfTokenizer


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
        runtime: str = FP32,
    ) -> None:
        self.files = files
        self.runtime = runtime
        self._new_session = session_factory(runtime, threads=threads)
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

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalEncoder:
        """Resolve (maybe download) the model folder; the sessions load on first use.

        ``CLIPSEARCH_ENCODER_RUNTIME=int8`` takes the folder's int8 copy (a model of its own,
        see :func:`~clipsearch.encoder.quantize.int8_files`); a runtime that cannot run here
        (openvino not installed) raises :class:`EncoderError` now, at start-up."""
        from clipsearch.encoder.quantize import int8_files
        from clipsearch.encoder.session import check_runtime

        runtime = str(settings.encoder_runtime)  # model_copy() may hold the plain string
        check_runtime(runtime)
        files = resolve_model_files(settings)
        if runtime == INT8:
            files = int8_files(files)
        return cls(
            files,
            model_name=settings.model_name,
            batch_size=settings.encoder_batch_size,
            threads=settings.encoder_threads,
            max_pixels=settings.max_pixels,
            runtime=runtime,
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

    @property
    def folder_config(self) -> ModelConfig:
        """What the folder's files say, without loading the model (None fields: unknown)."""
        return self._config

    @property
    def loaded(self) -> bool:
        """Whether the sessions are loaded (they load on first use)."""
        return self._loaded is not None

    def _make_tokenizer(self) -> ClipTokenizer | HfTokenizer:
        cfg = self._config
        if cfg.tokenizer == "clip-bpe":
            return get_tokenizer()
        return HfTokenizer(
            self.files.folder / TOKENIZER_JSON,
            self.files.folder / TOKENIZER_CONFIG,
            context_length=cfg.context_length,
            clean=cfg.text_clean,
            language_prefix=cfg.language_prefix,
        )

    def _load_now(self) -> _Loaded:
        tokenizer = self._make_tokenizer()
        pad_id = tokenizer.pad_id if isinstance(tokenizer, HfTokenizer) else 0
        textual = text_tower(self._new_session(self.files.textual), pad_id=pad_id)
        visual = ClipVisual(self._new_session(self.files.visual))
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
        return _Loaded(textual, visual, full, tokenizer)

    @property
    def config(self) -> ModelConfig:
        return self.load().config

    @property
    def precision(self) -> str | None:
        """What the arithmetic runs in: ``fp32``, ``int8``, or OpenVINO's ``bf16``/``f32``
        (known once loaded; None before)."""
        if self.runtime != "openvino":
            return self.runtime
        loaded = self._loaded
        return getattr(loaded.visual.session, "precision", None) if loaded else None

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
    def tokenize(
        self, texts: Sequence[str], *, language: str | None = None
    ) -> tuple[TokenIds, TokenIds]:
        """Ids and mask, int32 [B, context_length] (trimmed later, per chunk, when the
        tower allows). ``language`` matters only to models that take a language code."""
        loaded = self.load()
        if isinstance(loaded.tokenizer, HfTokenizer):
            return loaded.tokenizer.tokenize(texts, loaded.config.context_length, language=language)
        return loaded.tokenizer.tokenize(texts, loaded.config.context_length)

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
        return preprocess_pixels(
            image,
            int(cfg.image_size or 0),
            cfg.mean,
            cfg.std,
            resize_mode=cfg.resize_mode,
            interpolation=cfg.interpolation,
        )

    def preprocess_image(self, data: bytes) -> npt.NDArray[np.float32]:
        """Image bytes → float32 [3,S,S]; raises ImageDecodeError for bad images."""
        cfg = self.config
        pixels, _info = load_and_preprocess(
            data,
            int(cfg.image_size or 0),
            self.max_pixels,
            cfg.mean,
            cfg.std,
            resize_mode=cfg.resize_mode,
            interpolation=cfg.interpolation,
        )
        return pixels

    def encode_texts_sync(self, texts: Sequence[str], *, language: str | None = None) -> Vectors:
        """Tokenize and encode, chunked; texts are grouped by length so trimming pays off."""
        ids, mask = self.tokenize(texts, language=language)
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

    async def encode_texts(self, texts: Sequence[str], *, language: str | None = None) -> Vectors:
        """Texts → [N,D] unit vectors; every forward pass runs in the encoder's pool.
        ``language`` (ISO 639-1) is read only by models that take a language code (NLLB)."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        await self._run(self.load)
        ids, mask = await self._run(partial(self.tokenize, texts, language=language))
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
