"""Labelled sets for ``clipsearch evaluate``, read into one :class:`CaptionSet`:

* ``captions.csv`` (``image_path,caption``), as :func:`clipsearch.evaluation.read_captions`;
* Flickr ``*.token`` (``image.jpg#0<TAB>caption``, five lines per image), parsed by the
  ingest's own reader (:mod:`clipsearch.jobs.captions`);
* the Karpathy split JSON (``dataset_flickr30k.json``, ``dataset_flickr8k.json``,
  ``dataset_coco.json``): ``images[]`` with ``filename`` (and ``filepath`` for COCO),
  ``split`` and ``sentences[].raw``; only the images of ``split`` (default ``test``, the
  1,000 of the standard Flickr30k protocol; ``all`` keeps every one).

Several captions per image are kept as the standard protocol counts them: each caption is a
text->image query whose target is its image, and an image->text query is a hit when any of
its captions is among the K best (see :mod:`clipsearch.evaluation`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from clipsearch.evaluation import CaptionSet, read_captions
from clipsearch.jobs.captions import CaptionFileError, parse_captions

ALL_SPLITS = "all"


def read_set(path: Path, images_dir: Path | None = None, split: str = "test") -> CaptionSet:
    """The set in ``path`` (format told by the name, else by the content); images are
    looked up under ``images_dir``, else the file's folder. ``ValueError`` names the
    first problem (an unknown format, a missing image, an empty split)."""
    base = images_dir if images_dir is not None else path.parent
    raw = path.read_bytes()
    if path.suffix.lower() == ".json" or raw.lstrip()[:1] == b"{":
        return _karpathy(path, raw, base, split)
    if path.suffix.lower() == ".csv":
        return read_captions(path, images_dir)
    try:
        captions = parse_captions(raw, path.name)
    except CaptionFileError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    return _build(path, base, captions.items())


def _karpathy(path: Path, raw: bytes, base: Path, split: str) -> CaptionSet:
    try:
        doc: Any = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"{path}: not JSON: {exc}") from exc
    images = doc.get("images") if isinstance(doc, dict) else None
    if not isinstance(images, list):
        raise ValueError(f"{path}: expected a Karpathy split file with an 'images' list")
    entries: list[tuple[str, list[str]]] = []
    splits: set[str] = set()
    for n, img in enumerate(images):
        if not isinstance(img, dict) or not isinstance(img.get("filename"), str):
            raise ValueError(f"{path}: images[{n}] has no filename")
        splits.add(str(img.get("split")))
        if split != ALL_SPLITS and img.get("split") != split:
            continue
        folder = img.get("filepath")
        name = (
            f"{folder}/{img['filename']}" if isinstance(folder, str) and folder else img["filename"]
        )
        sentences = img.get("sentences") or []
        texts = [str(s.get("raw") or "").strip() for s in sentences if isinstance(s, dict)]
        entries.append((name, [t for t in texts if t]))
    if not entries:
        raise ValueError(
            f"{path}: no images in split {split!r} (splits here: {', '.join(sorted(splits))}; "
            f"or --split {ALL_SPLITS})"
        )
    return _build(path, base, entries)


def _build(path: Path, base: Path, entries: list[tuple[str, list[str]]]) -> CaptionSet:
    images: list[Path] = []
    captions: list[str] = []
    image_of: list[int] = []
    for name, texts in entries:
        if not texts:
            continue  # an image without a caption is no query and no target
        image = (base / name).resolve()
        if not image.is_file():
            raise ValueError(f"{path}: image not found: {image} (use --images DIR)")
        images.append(image)
        captions += texts
        image_of += [len(images) - 1] * len(texts)
    if not captions:
        raise ValueError(f"{path}: no captions")
    return CaptionSet(images, captions, image_of)
