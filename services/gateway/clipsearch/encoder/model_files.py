"""Finding a model folder: an explicit path, the cache, or a download by catalog name.

Order: ``CLIPSEARCH_MODEL_PATH`` (a folder) wins; else ``<cache dir>/<name>/`` if it holds
a model; else the files are downloaded by name: clip-as-service's two ONNX files from
``settings.model_base_url`` with their md5s, or a Hugging Face repository in Immich's layout
(:mod:`clipsearch.encoder.hf_download`, names in :mod:`clipsearch.encoder.catalog`). Both
resume (HTTP ``Range``) into a ``.part`` file that is renamed into place only once verified.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from clipsearch.core.config import Settings
from clipsearch.encoder.clip_as_service import (
    ONNX_MODELS,
    TEXTUAL_FILE,
    VISUAL_FILE,
    VISUAL_IMAGE_SIZE,
    FileSpec,
    ModelTable,
    image_size_for_name,
)
from clipsearch.encoder.protocol import EncoderError

log = logging.getLogger(__name__)

__all__ = [
    "ONNX_MODELS",
    "TEXTUAL_FILE",
    "VISUAL_FILE",
    "VISUAL_IMAGE_SIZE",
    "FileSpec",
    "ModelTable",
    "image_size_for_name",
]


class ModelResolutionError(EncoderError):
    """No usable model folder: not given, not cached, and not downloadable."""


@dataclass(frozen=True)
class ModelFiles:
    """A resolved model folder: ``textual.onnx`` and ``visual.onnx`` (clip-server's layout)
    or ``textual/model.onnx`` and ``visual/model.onnx`` with their configs (Immich's)."""

    folder: Path

    @property
    def layout(self) -> str:
        from clipsearch.encoder.layouts import CLIP_SERVER, detect_layout

        return detect_layout(self.folder) or CLIP_SERVER

    @property
    def textual(self) -> Path:
        from clipsearch.encoder.layouts import layout_paths

        paths = layout_paths(self.folder)
        return paths.textual if paths else self.folder / TEXTUAL_FILE

    @property
    def visual(self) -> Path:
        from clipsearch.encoder.layouts import layout_paths

        paths = layout_paths(self.folder)
        return paths.visual if paths else self.folder / VISUAL_FILE

    def complete(self) -> bool:
        return self.textual.is_file() and self.visual.is_file()


def cache_folder_name(name: str) -> str:
    """Cache folder for a model name, spelt as clip-server does (``ViT-B-32::openai`` ->
    ``ViT-B-32-openai``)."""
    return name.replace("/", "-").replace("::", "-")


def md5_file(path: Path, chunk: int = 1 << 20) -> str:
    return file_digest(path, "md5", chunk)


# Digests a download can be checked against: clip-as-service publishes md5s; the Hugging
# Face hub gives the sha256 of LFS files and the git blob sha1 of the others.
DIGESTS = ("md5", "sha256", "git-sha1")


def file_digest(path: Path, algo: str, chunk: int = 1 << 20) -> str:
    """Hex digest of the file: ``md5``, ``sha256`` or ``git-sha1`` (git's blob id:
    sha1 of ``b"blob <size>\\0"`` and the bytes)."""
    if algo == "md5":
        digest = hashlib.md5(usedforsecurity=False)
    elif algo == "sha256":
        digest = hashlib.sha256()
    elif algo == "git-sha1":
        digest = hashlib.sha1(usedforsecurity=False)
        digest.update(b"blob %d\0" % path.stat().st_size)
    else:
        raise ValueError(f"unknown digest {algo!r}")
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _fix_hint(settings: Settings, folder: Path) -> str:
    return (
        f"Set CLIPSEARCH_MODEL_PATH to a folder holding {TEXTUAL_FILE} and {VISUAL_FILE}, "
        f"or pre-fill the cache folder {folder} with them "
        f"(or allow downloads from {settings.model_base_url})."
    )


def resolve_model_files(settings: Settings, *, table: ModelTable = ONNX_MODELS) -> ModelFiles:
    """The model folder for ``settings``, downloading the published files if needed.

    Blocking (it may download hundreds of MB): call it at start-up or in a thread.
    Raises :class:`ModelResolutionError` with a message that names the fix.
    """
    if settings.model_path is not None:
        files = ModelFiles(settings.model_path)
        if not files.complete():
            raise ModelResolutionError(
                f"CLIPSEARCH_MODEL_PATH={settings.model_path} must hold "
                f"{TEXTUAL_FILE} and {VISUAL_FILE} (clip-server's layout) or "
                "textual/model.onnx and visual/model.onnx (Immich's layout)"
            )
        return files

    folder = settings.resolved_model_cache_dir / cache_folder_name(settings.model_name)
    files = ModelFiles(folder)
    specs = table.get(settings.model_name)
    if specs is None:
        from clipsearch.encoder import catalog

        entry = catalog.lookup(settings.model_name)
        if entry is not None and entry.source == catalog.HUGGINGFACE:
            from clipsearch.encoder.hf_download import ensure_hf_model

            return ensure_hf_model(entry, settings, folder)
        if entry is not None and entry.local_name and not files.complete():
            raise ModelResolutionError(
                f"model {settings.model_name!r} is served by clip-server only "
                f"({entry.note}): use CLIPSEARCH_ENCODER_MODE=service, or for the local "
                f"encoder CLIPSEARCH_MODEL_NAME={entry.local_name} (the same model in ONNX)"
            )
        if files.complete():
            return files
        known = ", ".join(sorted(table))
        raise ModelResolutionError(
            f"model {settings.model_name!r} is not cached in {folder} and is not one of the "
            f"published ONNX models ({known}). {_fix_hint(settings, folder)}"
        )

    for spec, target in zip(specs, (files.textual, files.visual), strict=True):
        rel_url, md5 = spec
        url = settings.model_base_url.rstrip("/") + "/" + rel_url
        try:
            ensure_file(url, target, md5, timeout=settings.model_download_timeout_s)
        except ModelResolutionError as exc:
            raise ModelResolutionError(f"{exc}. {_fix_hint(settings, folder)}") from exc
    return files


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    # Two processes starting together (gateway + ingest worker) must not write one .part.
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def verified(target: Path, md5: str, algo: str = "md5") -> bool:
    """Whether ``target`` exists with that digest; a stamp file spares re-hashing on every
    start."""
    if not target.is_file():
        return False
    stat = target.stat()
    stamp = target.with_name(f"{target.name}.{algo}")
    key = f"{md5} {stat.st_size} {stat.st_mtime_ns}"
    with contextlib.suppress(OSError):
        if stamp.read_text().strip() == key:
            return True
    if file_digest(target, algo) != md5:
        return False
    stamp.write_text(key + "\n")
    return True


def ensure_file(
    url: str,
    target: Path,
    md5: str,
    *,
    timeout: float = 60.0,
    max_attempts: int = 3,
    client: httpx.Client | None = None,
    algo: str = "md5",
) -> Path:
    """``target`` with the given digest (``algo``: md5 by default), downloading ``url``
    (resumable) if it is absent or wrong.

    A dropped connection resumes from the ``.part`` file's size with ``Range``; a file
    whose digest is wrong is deleted and reported (after one fresh retry if it was resumed).
    """
    with _file_lock(target.with_name(target.name + ".lock")):
        if verified(target, md5, algo):
            return target
        if target.exists():
            log.warning("%s does not match %s %s; downloading it again", target, algo, md5)
            target.unlink()
        own_client = client is None
        http = client or httpx.Client(timeout=timeout, follow_redirects=True)
        try:
            return _download(http, url, target, md5, max_attempts, algo)
        finally:
            if own_client:
                http.close()


def _download(
    http: httpx.Client, url: str, target: Path, md5: str, max_attempts: int, algo: str
) -> Path:
    part = target.with_name(target.name + ".part")
    last_error: Exception | None = None
    for attempt in range(1, max_attempts + 1):
        offset = part.stat().st_size if part.exists() else 0
        try:
            _fetch_into(http, url, part, offset)
        except httpx.HTTPStatusError as exc:
            # 404/403 will not change on retry: report at once.
            code = exc.response.status_code
            raise ModelResolutionError(f"download of {url} failed: HTTP {code}") from exc
        except httpx.TransportError as exc:
            last_error = exc
            log.warning("download of %s interrupted (attempt %d): %r", url, attempt, exc)
            if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
                time.sleep(min(0.2 * attempt, 1.0))
            continue
        actual = file_digest(part, algo)
        if actual == md5:
            os.replace(part, target)
            verified(target, md5, algo)  # writes the stamp
            log.info("downloaded %s (%d bytes)", target, target.stat().st_size)
            return target
        part.unlink()
        if offset == 0:
            raise ModelResolutionError(
                f"{algo} mismatch for {url}: expected {md5}, got {actual} (file deleted)"
            )
        # A resumed file can be corrupt if the server's copy changed: retry once from 0.
        last_error = ModelResolutionError(f"{algo} mismatch after resume: {actual} != {md5}")
    raise ModelResolutionError(
        f"download of {url} failed after {max_attempts} attempts: {last_error!r}"
    )


def _fetch_into(http: httpx.Client, url: str, part: Path, offset: int) -> None:
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with http.stream("GET", url, headers=headers) as resp:
        if resp.status_code == 416 and offset:
            # The .part may already be whole (the connection dropped after the last byte).
            return
        resp.raise_for_status()
        # A server that ignores Range answers 200 with the whole file: start over.
        mode = "ab" if offset and resp.status_code == 206 else "wb"
        with part.open(mode) as out:
            # No chunk size: write bytes as they arrive, so a drop keeps everything received.
            for block in resp.iter_bytes():
                out.write(block)
