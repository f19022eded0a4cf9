"""What the app holds for its lifetime, built once in the lifespan."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from clipsearch.core.config import Settings
from clipsearch.encoder.protocol import Encoder
from clipsearch.store.protocol import VectorStore


@dataclass
class AppState:
    settings: Settings
    encoder: Encoder
    store: VectorStore
    started_at: float = field(default_factory=time.time)
