"""What models the gateway knows: the configured one (loaded or not), the model folders in
the cache, and the catalog of names each encoder mode serves."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from clipsearch.core.config import Settings
from clipsearch.encoder import catalog
from clipsearch.encoder.layouts import detect_layout
from clipsearch.encoder.model_config import ModelConfig, read_model_config
from clipsearch.encoder.model_files import cache_folder_name
from clipsearch.encoder.protocol import Encoder, EncoderError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelView:
    """One model as ``GET /v1/models`` shows it; None where it is not known (yet)."""

    name: str
    source: str | None
    layout: str | None
    dim: int | None
    languages: list[str] | None
    score: str | None
    modes: list[str]
    folder: str | None = None
    loaded: bool | None = None
    fingerprint: str | None = None


@dataclass(frozen=True)
class ModelsReport:
    mode: str
    configured: ModelView
    cached: list[ModelView]
    catalog: list[ModelView]


def _innermost(encoder: object) -> object:
    """The encoder under its wrappers (metrics, fallback) — they keep it as ``inner``."""
    seen = 0
    while hasattr(encoder, "inner") and seen < 8:
        encoder = encoder.inner
        seen += 1
    return encoder


def _languages(cfg: ModelConfig | None, entry: catalog.CatalogEntry | None) -> list[str] | None:
    if cfg is not None and cfg.languages:
        return list(cfg.languages)
    return list(entry.languages) if entry else None


def _entry_view(entry: catalog.CatalogEntry) -> ModelView:
    return ModelView(
        name=entry.name,
        source=entry.source,
        layout=entry.layout,
        dim=entry.dim,
        languages=list(entry.languages),
        score=entry.score,
        modes=list(entry.modes),
    )


def _folder_view(folder: Path, name: str, entry: catalog.CatalogEntry | None) -> ModelView:
    try:
        cfg: ModelConfig | None = read_model_config(folder, name)
    except EncoderError as exc:
        log.warning("cached model folder %s is unreadable: %s", folder, exc)
        cfg = None
    return ModelView(
        name=cfg.name if cfg else name,
        source=entry.source if entry else "local folder",
        layout=detect_layout(folder),
        dim=(cfg.dim if cfg else None) or (entry.dim if entry else None),
        languages=_languages(cfg, entry),
        score=cfg.score if cfg else None,
        modes=list(entry.modes) if entry else [catalog.LOCAL],
        folder=str(folder),
    )


def cached_models(settings: Settings) -> list[ModelView]:
    """Every model folder (either layout) directly under the cache dir. Blocking."""
    root = settings.resolved_model_cache_dir
    by_folder = {cache_folder_name(e.name): e for e in catalog.CATALOG.values()}
    if not root.is_dir():
        return []
    views = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if detect_layout(folder) is None:
            continue  # a partial download or something else
        entry = by_folder.get(folder.name)
        views.append(_folder_view(folder, entry.name if entry else folder.name, entry))
    return views


def configured_model(settings: Settings, encoder: Encoder) -> ModelView:
    """The model the encoder serves, without loading it (nor asking a server that is down)."""
    from clipsearch.encoder.local import LocalEncoder

    inner = _innermost(encoder)
    entry = catalog.lookup(encoder.model_name) or catalog.lookup(settings.model_name)
    if isinstance(inner, LocalEncoder):
        # Read what is known without loading: a loaded model's full config, else the folder's.
        cfg = inner.config if inner.loaded else inner.folder_config
        return ModelView(
            name=inner.model_name,
            source=entry.source if entry else "local folder",
            layout=inner.files.layout,
            dim=cfg.dim or (entry.dim if entry else None),
            languages=_languages(cfg, entry),
            score=cfg.score,
            modes=list(entry.modes) if entry else [catalog.LOCAL],
            folder=str(inner.files.folder),
            loaded=inner.loaded,
            fingerprint=inner.fingerprint if inner.loaded else cfg.fingerprint,
        )
    try:
        dim: int | None = encoder.dim
    except EncoderError:  # service mode before clip-server answered its probe
        dim = None
    view = _entry_view(entry) if entry else None
    fingerprint: str | None
    try:
        fingerprint = encoder.fingerprint
    except EncoderError:
        fingerprint = None
    return ModelView(
        name=encoder.model_name,
        source=view.source if view else "clip-server",
        layout=None,  # the server's business
        dim=dim,
        languages=view.languages if view else None,
        score=view.score if view else "cosine",
        modes=view.modes if view else [catalog.SERVICE],
        loaded=dim is not None,
        fingerprint=fingerprint,
    )


def describe_models(settings: Settings, encoder: Encoder) -> ModelsReport:
    """The whole report (blocking: it lists the cache dir and reads small config files)."""
    return ModelsReport(
        mode=encoder.mode,
        configured=configured_model(settings, encoder),
        cached=cached_models(settings),
        catalog=[_entry_view(e) for e in catalog.CATALOG.values()],
    )
