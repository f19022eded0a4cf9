"""What the app holds for its lifetime, built once in the lifespan."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from clipsearch.core.config import Settings
from clipsearch.core.metrics import Metrics
from clipsearch.encoder.protocol import Encoder
from clipsearch.encoder.registry import ModelRegistry
from clipsearch.jobs.runner import JobManager
from clipsearch.store.protocol import VectorStore
from clipsearch.usecases.blobs import Blobs
from clipsearch.usecases.browse import BrowseService
from clipsearch.usecases.collections import Collections
from clipsearch.usecases.images import ImageService
from clipsearch.usecases.rerank import RerankService, TextRanker
from clipsearch.usecases.search import SearchService
from clipsearch.usecases.search_log import NO_SEARCH_LOG, SearchLog
from clipsearch.usecases.similar import SimilarService
from clipsearch.usecases.similarity import SimilarityService
from clipsearch.usecases.texts import TextService
from clipsearch.usecases.transfer import TransferService


@dataclass
class AppState:
    settings: Settings
    encoder: Encoder
    store: VectorStore
    blobs: Blobs
    metrics: Metrics
    collections: Collections
    images: ImageService
    texts: TextService
    search: SearchService
    similar: SimilarService
    jobs: JobManager
    similarity: SimilarityService
    rerank: RerankService
    browse: BrowseService
    transfer: TransferService
    started_at: float = field(default_factory=time.time)

    @classmethod
    def build(
        cls,
        settings: Settings,
        encoder: Encoder,
        store: VectorStore,
        blobs: Blobs,
        metrics: Metrics,
        search_log: SearchLog = NO_SEARCH_LOG,
        ranker: TextRanker | None = None,
        models: ModelRegistry | None = None,
    ) -> AppState:
        """Wire the use-cases over the adapters (one ``Collections`` cache shared by all;
        searches write to ``search_log``; ``ranker`` is clip-server's rank in service mode).
        The job manager is started and stopped by the app's lifespan."""
        collections = Collections(
            store,
            encoder,
            models,
            default=settings.default_collection,
            auto_create=settings.auto_create_collections,
        )
        search = SearchService(settings, encoder, store, collections, search_log)
        return cls(
            settings=settings,
            encoder=encoder,
            store=store,
            blobs=blobs,
            metrics=metrics,
            collections=collections,
            images=ImageService(settings, encoder, store, blobs, collections),
            texts=TextService(settings, encoder, store, collections),
            search=search,
            similar=SimilarService(settings, store, collections, search),
            jobs=JobManager(settings, encoder, store, blobs, collections),
            similarity=SimilarityService(settings, encoder, collections, search),
            rerank=RerankService(blobs, ranker),
            browse=BrowseService(settings, store, collections),
            transfer=TransferService(settings, encoder, store, blobs, collections),
        )
