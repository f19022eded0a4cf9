"""Prometheus metrics and in-process latency windows, one set per app.

Each app owns its own :class:`CollectorRegistry`, so tests can build several apps in one
process without "duplicated timeseries" errors.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class LatencyWindow:
    """The last ``size`` durations (ms) of one operation, for p50/p95 in ``/v1/stats``.

    Bounded so a long-running gateway keeps constant memory; until ``size`` samples are
    seen, the window holds everything since start.
    """

    def __init__(self, size: int = 10_000) -> None:
        self._samples: deque[float] = deque(maxlen=size)
        self.count = 0

    def observe(self, ms: float) -> None:
        self._samples.append(ms)
        self.count += 1

    def summary(self) -> dict[str, Any]:
        if not self._samples:
            return {"count": 0, "p50_ms": None, "p95_ms": None}
        data = np.fromiter(self._samples, dtype=np.float64)
        p50, p95 = np.percentile(data, [50, 95])
        return {"count": self.count, "p50_ms": round(float(p50), 3), "p95_ms": round(float(p95), 3)}


class Metrics:
    """The app's Prometheus collectors and the latency windows behind ``/v1/stats``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "clipsearch_http_requests_total",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "clipsearch_http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.encoder_batch = Histogram(
            "clipsearch_encoder_batch_size",
            "Items per encoder call.",
            ["kind"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.encoder_seconds = Histogram(
            "clipsearch_encoder_duration_seconds",
            "Encoder call latency.",
            ["kind", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.store_seconds = Histogram(
            "clipsearch_store_call_duration_seconds",
            "Vector store (Milvus) call latency by operation.",
            ["op", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.search_window = LatencyWindow()
        self.ingest_window = LatencyWindow()

    def render(self) -> bytes:
        return generate_latest(self.registry)
