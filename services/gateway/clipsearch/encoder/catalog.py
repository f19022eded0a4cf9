"""The model catalog: a model name -> where its files come from, its layout, dim, languages
and the encoder modes that serve it.

Three sources:

* ``clip-as-service``: clip-server's published ONNX files (``ViT-B-32::openai``...), fetched
  by :func:`~clipsearch.encoder.model_files.resolve_model_files` with their md5s. Both modes.
* ``huggingface``: a Hugging Face model repository in Immich's layout (Immich's exports,
  ``immich-app/...``), fetched by :mod:`clipsearch.encoder.hf_download`. Local mode only
  (clip-server does not read this layout).
* ``clip-server``: names only clip-server itself serves (its torch executor's M-CLIP
  models). Service mode only; each names the Immich export of the same model for local mode.

Honesty about the data: dims and languages are the published models' (open_clip configs,
M-CLIP's model cards). Revisions and sha256s of the Hugging Face files are filled in only
where known; none could be checked from here, so every Hugging Face entry has
``revision=None`` (the commit is pinned at the first download: ``main`` is resolved once,
recorded in the cache folder, and every file is fetched at that commit) and no sha256 (each
file is checked against the hub's own metadata: the LFS sha256 of the ONNX files, the git
blob sha1 of the small JSON files). Fill ``revision``/``sha256`` in to pin them for real.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from clipsearch.encoder.layouts import CLIP_SERVER, IMMICH, IMMICH_FILES
from clipsearch.encoder.model_files import ONNX_MODELS

CLIP_AS_SERVICE = "clip-as-service"
HUGGINGFACE = "huggingface"
CLIP_SERVER_ONLY = "clip-server"

LOCAL = "local"
SERVICE = "service"

# XLM-R / LaBSE / NLLB / SigLIP 2's multilingual WebLI: ~100 languages, not listed one by one.
MULTILINGUAL = "multilingual"


@dataclass(frozen=True)
class CatalogEntry:
    """One model name and where it comes from."""

    name: str
    source: str
    layout: str
    dim: int | None
    languages: tuple[str, ...]
    modes: tuple[str, ...]
    repo: str | None = None  # Hugging Face repository id
    revision: str | None = None  # a pinned commit; None: pinned at the first download
    files: tuple[str, ...] = ()
    sha256: Mapping[str, str] = field(default_factory=dict)  # per file, where known
    local_name: str | None = None  # for a service-only name: the local equivalent
    note: str = ""
    score: str = "cosine"  # "sigmoid" for SigLIP-trained models


# open_clip's embed_dim per architecture (the part of a clip-as-service name before "::").
_ARCH_DIM: Mapping[str, int] = {
    "RN50": 1024,
    "RN101": 512,
    "RN50x4": 640,
    "RN50x16": 768,
    "RN50x64": 1024,
    "ViT-B-32": 512,
    "ViT-B-16": 512,
    "ViT-B-16-plus-240": 640,
    "ViT-L-14": 768,
    "ViT-L-14-336": 768,
    "ViT-H-14": 1024,
    "ViT-g-14": 1024,
}


def _clip_as_service() -> dict[str, CatalogEntry]:
    return {
        name: CatalogEntry(
            name=name,
            source=CLIP_AS_SERVICE,
            layout=CLIP_SERVER,
            dim=_ARCH_DIM.get(name.split("::", 1)[0]),
            languages=("en",),
            modes=(LOCAL, SERVICE),
        )
        for name in ONNX_MODELS
    }


def _hf(repo: str, dim: int, languages: tuple[str, ...], note: str) -> CatalogEntry:
    sigmoid = "siglip" in repo.lower()  # SigLIP, SigLIP 2 and NLLB-CLIP (SigLIP loss)
    return CatalogEntry(
        score="sigmoid" if sigmoid else "cosine",
        name=repo,
        source=HUGGINGFACE,
        layout=IMMICH,
        dim=dim,
        languages=languages,
        modes=(LOCAL,),
        repo=repo,
        files=IMMICH_FILES,
        note=note,
    )


_HF: tuple[CatalogEntry, ...] = (
    _hf("immich-app/ViT-B-32__openai", 512, ("en",), "CLIP ViT-B/32, English"),
    _hf("immich-app/ViT-B-16-SigLIP__webli", 768, ("en",), "SigLIP B/16, English"),
    _hf(
        "immich-app/ViT-B-16-SigLIP2__webli",
        768,
        (MULTILINGUAL,),
        "SigLIP 2 B/16, Gemma tokenizer, multilingual WebLI",
    ),
    _hf(
        "immich-app/XLM-Roberta-Large-Vit-B-16Plus",
        640,
        (MULTILINGUAL,),
        "M-CLIP: XLM-R Large text tower, ViT-B-16-plus-240 image tower",
    ),
    _hf(
        "immich-app/XLM-Roberta-Large-Vit-B-32",
        512,
        (MULTILINGUAL,),
        "M-CLIP: XLM-R Large text tower, ViT-B/32 image tower",
    ),
    _hf(
        "immich-app/XLM-Roberta-Large-Vit-L-14",
        768,
        (MULTILINGUAL,),
        "M-CLIP: XLM-R Large text tower, ViT-L/14 image tower",
    ),
    _hf(
        "immich-app/LABSE-Vit-L-14",
        768,
        (MULTILINGUAL,),
        "M-CLIP: LaBSE text tower, ViT-L/14 image tower",
    ),
    _hf(
        "immich-app/nllb-clip-base-siglip__v1",
        768,
        (MULTILINGUAL,),
        "NLLB-CLIP: NLLB-200 text tower (FLORES-200 language code first), SigLIP image tower",
    ),
)

# clip-server 0.8's M-CLIP models (clip_server/model/mclip_model.py; torch executor only)
# with their open_clip image towers' dims, and the Immich export of the same model.
_MCLIP: Mapping[str, tuple[int, str]] = {
    "M-CLIP/XLM-Roberta-Large-Vit-B-32": (512, "immich-app/XLM-Roberta-Large-Vit-B-32"),
    "M-CLIP/XLM-Roberta-Large-Vit-L-14": (768, "immich-app/XLM-Roberta-Large-Vit-L-14"),
    "M-CLIP/XLM-Roberta-Large-Vit-B-16Plus": (
        640,
        "immich-app/XLM-Roberta-Large-Vit-B-16Plus",
    ),
    "M-CLIP/LABSE-Vit-L-14": (768, "immich-app/LABSE-Vit-L-14"),
}


def _mclip() -> dict[str, CatalogEntry]:
    return {
        name: CatalogEntry(
            name=name,
            source=CLIP_SERVER_ONLY,
            layout=CLIP_SERVER,
            dim=dim,
            languages=(MULTILINGUAL,),
            modes=(SERVICE,),
            local_name=local,
            note="clip-server's torch executor (no ONNX published)",
        )
        for name, (dim, local) in _MCLIP.items()
    }


CATALOG: Mapping[str, CatalogEntry] = {
    **_clip_as_service(),
    **{e.name: e for e in _HF},
    **_mclip(),
}


def lookup(name: str) -> CatalogEntry | None:
    """The catalog entry for ``name`` (exact spelling), or None for a name it does not know
    (a custom folder through ``CLIPSEARCH_MODEL_PATH`` or a pre-filled cache)."""
    return CATALOG.get(name)
