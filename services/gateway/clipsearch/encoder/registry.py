"""The models a gateway can encode with: its main encoder and the extra model folders of
``CLIPSEARCH_EXTRA_MODELS``, each built (and its ONNX sessions loaded) on first use.

A collection records the fingerprint of the model that built it; the registry finds the
encoder with that fingerprint, so collections of an older model stay searchable after the
main model changes, as long as that model is still configured.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from clipsearch.encoder.protocol import Encoder, EncoderError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ExtraModel:
    """One ``CLIPSEARCH_EXTRA_MODELS`` entry: ``path`` or ``name=path``."""

    path: Path
    name: str | None = None

    @classmethod
    def parse(cls, entry: str) -> ExtraModel:
        name, sep, path = entry.partition("=")
        if not sep:
            return cls(Path(entry.strip()))
        return cls(Path(path.strip()), name.strip() or None)


class ModelRegistry:
    """Thread-safe lookups by model name or fingerprint; extras are built once, under a
    lock, on the first lookup that needs them (a gateway that never serves an old
    collection never loads its model)."""

    def __init__(
        self,
        main: Encoder,
        extras: Sequence[ExtraModel] = (),
        build: Callable[[ExtraModel], Encoder] | None = None,
    ) -> None:
        self.main = main
        self._extras = list(extras)
        self._build = build
        self._built: list[tuple[ExtraModel, Encoder]] | None = None
        self._lock = threading.Lock()
        self.errors: dict[str, str] = {}  # extra model path -> why it could not be built

    def _extra_encoders(self) -> list[tuple[ExtraModel, Encoder]]:
        built = self._built
        if built is not None:
            return built
        with self._lock:
            if self._built is None:
                out: list[tuple[ExtraModel, Encoder]] = []
                for spec in self._extras:
                    if self._build is None:
                        break
                    try:
                        enc = self._build(spec)
                        enc.fingerprint  # noqa: B018  # hashed now, not mid-request
                    except (EncoderError, OSError, ValueError) as exc:
                        self.errors[str(spec.path)] = str(exc)
                        log.error("extra model %s cannot be used: %s", spec.path, exc)
                        continue
                    out.append((spec, enc))
                self._built = out
            return self._built

    def encoders(self) -> list[Encoder]:
        """The main encoder first, then every extra that could be built."""
        return [self.main] + [e for _, e in self._extra_encoders()]

    def by_fingerprint(self, fingerprint: str) -> Encoder | None:
        if self.main.fingerprint == fingerprint:
            return self.main
        for _, enc in self._extra_encoders():
            if enc.fingerprint == fingerprint:
                return enc
        return None

    def by_name(self, name: str) -> Encoder | None:
        """The model called ``name`` (its configured name, its own name, or fingerprint)."""
        if name in (self.main.model_name, self.main.fingerprint):
            return self.main
        for spec, enc in self._extra_encoders():
            if name in (spec.name, enc.model_name, enc.fingerprint):
                return enc
        return None

    def names(self) -> list[str]:
        """The names of the models this gateway can use (for error messages)."""
        return [self.main.model_name] + [s.name or e.model_name for s, e in self._extra_encoders()]

    async def close(self) -> None:
        """Close the extras built here (the main encoder belongs to the app)."""
        for _, enc in self._built or []:
            await enc.close()
