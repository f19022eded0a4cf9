"""Fetching an Immich-layout model from a Hugging Face hub, checked and resumable.

``huggingface_hub`` gives each file's address at a revision and the hub's metadata for it
(the commit it resolves to, its size, its ETag: the sha256 of an LFS file, the git blob sha1
of a small one). The bytes are fetched by the project's own resumable downloader
(:func:`~clipsearch.encoder.model_files.ensure_file`: ``.part`` files resumed with ``Range``
across restarts, renamed into place only once their digest matches) — ``hf_hub_download``
deletes a partial file when a download fails, so it could not resume after a restart.

The hub address is ``CLIPSEARCH_HF_ENDPOINT`` (a mirror, or a loopback server in tests).
A folder fully fetched once is used from then on without the network: its manifest
(``.clipsearch-hf.json``) records the revision and each file's digest, and the digests'
stamps spare re-hashing.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from huggingface_hub import get_hf_file_metadata, hf_hub_url
from huggingface_hub.errors import HfHubHTTPError

from clipsearch.core.config import Settings
from clipsearch.encoder.catalog import CatalogEntry
from clipsearch.encoder.model_files import (
    ModelFiles,
    ModelResolutionError,
    ensure_file,
    verified,
)

log = logging.getLogger(__name__)

MANIFEST = ".clipsearch-hf.json"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SHA1 = re.compile(r"^[0-9a-f]{40}$")


def _fix(entry: CatalogEntry, settings: Settings, folder: Path) -> str:
    files = ", ".join(entry.files)
    return (
        f"Fix: pre-fill {folder} with {files} from {entry.repo} (e.g. on a connected machine "
        f"`hf download {entry.repo} --local-dir {folder}`), set CLIPSEARCH_MODEL_PATH to a "
        f"model folder, or set CLIPSEARCH_HF_ENDPOINT to a reachable hub "
        f"(now {settings.hf_endpoint})."
    )


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        raw = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}


def _complete(entry: CatalogEntry, folder: Path, manifest: dict[str, Any]) -> bool:
    """Every file present with the digest the manifest recorded (stamps: no re-hash).

    Without recorded digests, every file present is enough: the downloader renames a file
    into place only once checked, so that is a folder pre-filled by hand (the fix the
    offline error names), trusted as ``CLIPSEARCH_MODEL_PATH`` is."""
    digests = manifest.get("files")
    if manifest.get("repo") != entry.repo or not isinstance(digests, dict) or not digests:
        return all((folder / rel).is_file() for rel in entry.files)
    for rel in entry.files:
        spec = digests.get(rel)
        if not isinstance(spec, list) or len(spec) != 2:
            return False
        algo, digest = str(spec[0]), str(spec[1])
        if not verified(folder / rel, digest, algo):
            return False
    return True


def _expected(entry: CatalogEntry, rel: str, etag: str | None, url: str) -> tuple[str, str]:
    """(algo, digest) a file is checked against: the catalog's sha256, else the hub's."""
    if rel in entry.sha256:
        return "sha256", entry.sha256[rel].lower()
    tag = (etag or "").lower()
    if _SHA256.match(tag):
        return "sha256", tag
    if _SHA1.match(tag):
        return "git-sha1", tag
    raise ModelResolutionError(
        f"the hub gave no checksum for {url} (ETag {etag!r}): refusing an unchecked file"
    )


def ensure_hf_model(entry: CatalogEntry, settings: Settings, folder: Path) -> ModelFiles:
    """The entry's files under ``folder`` (Immich's layout), fetched if missing or wrong.

    Raises :class:`ModelResolutionError` with one line that names the fix.
    """
    assert entry.repo is not None, entry
    manifest = _read_manifest(folder)
    if _complete(entry, folder, manifest):
        return ModelFiles(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # The revision: the catalog's pin, else the one an earlier (partial) download pinned,
    # else main, resolved to its commit by the first answer and kept for every other file.
    revision = entry.revision or (
        manifest.get("revision") if manifest.get("repo") == entry.repo else None
    )
    endpoint = settings.hf_endpoint.rstrip("/")
    digests: dict[str, list[str]] = {}
    for rel in entry.files:
        url = hf_hub_url(entry.repo, rel, revision=revision or "main", endpoint=endpoint)
        try:
            meta = get_hf_file_metadata(url, timeout=settings.model_download_timeout_s)
        except HfHubHTTPError as exc:
            code = exc.response.status_code if exc.response is not None else "?"
            raise ModelResolutionError(
                f"model {entry.name!r}: the hub at {endpoint} answered HTTP {code} for "
                f"{rel} at revision {revision or 'main'}. {_fix(entry, settings, folder)}"
            ) from exc
        except Exception as exc:
            # Whatever the transport raised (huggingface_hub's HTTP stack changes between
            # versions: httpx, httpx2), or OfflineModeIsEnabled with HF_HUB_OFFLINE=1.
            raise ModelResolutionError(
                f"model {entry.name!r} is not in the cache {folder} and the hub at "
                f"{endpoint} cannot be reached ({type(exc).__name__}). "
                f"{_fix(entry, settings, folder)}"
            ) from exc
        # A redirect (the hub sends LFS files to its CDN) is followed; else the bytes are
        # fetched at the pinned commit, so that a push to main mid-way cannot mix versions.
        redirected = bool(meta.location) and meta.location != url
        if revision is None and meta.commit_hash:
            revision = meta.commit_hash
            _write_manifest(folder, entry, revision, {})
            url = hf_hub_url(entry.repo, rel, revision=revision, endpoint=endpoint)
        algo, digest = _expected(entry, rel, meta.etag, url)
        source = meta.location if redirected else url
        try:
            ensure_file(
                source,
                folder / rel,
                digest,
                algo=algo,
                timeout=settings.model_download_timeout_s,
            )
        except ModelResolutionError as exc:
            raise ModelResolutionError(f"{exc}. {_fix(entry, settings, folder)}") from exc
        digests[rel] = [algo, digest]
    _write_manifest(folder, entry, revision, digests)
    log.info("model %s at %s is in %s", entry.name, revision, folder)
    return ModelFiles(folder)


def _write_manifest(
    folder: Path, entry: CatalogEntry, revision: str | None, digests: dict[str, list[str]]
) -> None:
    body = {"repo": entry.repo, "revision": revision, "files": digests}
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
    tmp.replace(folder / MANIFEST)
