"""Retrieval quality: Recall@K both ways over a captions file (``image_path,caption``).

Text → image: each caption is a query against all distinct images; a hit at K means its
own image is among the K best. Image → text: each image is a query against all captions;
a hit means at least one of *its* captions is among the K best. Ties count in the
query's favour (rank = number of strictly better candidates).

A ``lang`` column (``python -m clipsearch.demo.shapes --lang both``) adds one table per
language: that language's captions against all images, and each image against that
language's captions only (``by_lang`` in the JSON).

The ``auto`` threshold (``threshold`` in the JSON, what ``min_score: "auto"`` uses): over
every caption/image pair of the set, labelled matching (the caption describes the image)
or not, the cosine that best separates the two by *balanced accuracy* (the mean of the
share of matching pairs at or above it and the share of non-matching pairs below it; the
classes are weighted equally, as non-matching pairs are far more numerous). It is the
midpoint between the two neighbouring scores where that is highest (the lowest such
threshold on a tie). The set must be one the model was not trained on.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from clipsearch.encoder.protocol import Encoder

KS = (1, 5, 10)
# Images are read and encoded this many at a time, so a large split never sits in memory.
CHUNK = 256


@dataclass(frozen=True)
class CaptionSet:
    """Distinct images, all captions, and which image each caption describes."""

    images: list[Path]
    captions: list[str]
    image_of: list[int]
    # The ``lang`` column, when the CSV has one (one entry per caption).
    langs: list[str] | None = None


def read_captions(csv_path: Path, images_dir: Path | None = None) -> CaptionSet:
    """Parse a captions CSV; paths are relative to ``images_dir`` or else the CSV's folder."""
    base = images_dir if images_dir is not None else csv_path.parent
    images: list[Path] = []
    index: dict[Path, int] = {}
    captions: list[str] = []
    image_of: list[int] = []
    langs: list[str] = []
    with csv_path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not {"image_path", "caption"} <= set(reader.fieldnames):
            raise ValueError(f"{csv_path}: header must be 'image_path,caption'")
        with_lang = "lang" in reader.fieldnames
        for line, row in enumerate(reader, start=2):
            rel, caption = (row.get("image_path") or "").strip(), row.get("caption") or ""
            if not rel or not caption.strip():
                raise ValueError(f"{csv_path}:{line}: empty image_path or caption")
            path = (base / rel).resolve()
            if path not in index:
                if not path.is_file():
                    raise ValueError(f"{csv_path}:{line}: image not found: {path}")
                index[path] = len(images)
                images.append(path)
            captions.append(caption)
            image_of.append(index[path])
            if with_lang:
                lang = (row.get("lang") or "").strip()
                if not lang:
                    raise ValueError(f"{csv_path}:{line}: empty lang")
                langs.append(lang)
    if not captions:
        raise ValueError(f"{csv_path}: no captions")
    return CaptionSet(images, captions, image_of, langs if with_lang else None)


def first_hit_ranks(
    sim: npt.NDArray[np.float32], relevant: Sequence[Sequence[int]]
) -> npt.NDArray[np.int64]:
    """For each query row, the 0-based rank of its best-scoring relevant candidate."""
    ranks = np.empty(len(sim), dtype=np.int64)
    for q, rel in enumerate(relevant):
        best = float(sim[q, list(rel)].max())
        ranks[q] = int((sim[q] > best).sum())
    return ranks


def recall_at(ranks: npt.NDArray[np.int64], ks: Sequence[int] = KS) -> dict[str, float]:
    return {f"R@{k}": float((ranks < k).mean()) for k in ks}


def recalls(
    text_vecs: npt.NDArray[np.float32],
    image_vecs: npt.NDArray[np.float32],
    image_of: Sequence[int],
    ks: Sequence[int] = KS,
) -> dict[str, dict[str, float]]:
    """R@K text→image and image→text from unit vectors (cosine = dot product)."""
    sim = text_vecs @ image_vecs.T  # [captions, images]
    image_of_caption, captions_of = relevant_sets(image_of, len(image_vecs))
    t2i = first_hit_ranks(sim, image_of_caption)
    i2t = first_hit_ranks(np.ascontiguousarray(sim.T), captions_of)
    return {"text_to_image": recall_at(t2i, ks), "image_to_text": recall_at(i2t, ks)}


def recalls_by_lang(
    text_vecs: npt.NDArray[np.float32],
    image_vecs: npt.NDArray[np.float32],
    image_of: Sequence[int],
    langs: Sequence[str],
    ks: Sequence[int] = KS,
) -> dict[str, dict[str, Any]]:
    """:func:`recalls` per language: its captions against all images, and the images that
    have a caption in it against its captions only."""
    out: dict[str, dict[str, Any]] = {}
    for lang in dict.fromkeys(langs):
        rows = [c for c, caption_lang in enumerate(langs) if caption_lang == lang]
        sim = text_vecs[rows] @ image_vecs.T
        of = [image_of[c] for c in rows]
        image_of_caption, captions_of = relevant_sets(of, len(image_vecs))
        t2i = first_hit_ranks(sim, image_of_caption)
        described = [i for i, caps in enumerate(captions_of) if caps]
        i2t = first_hit_ranks(
            np.ascontiguousarray(sim.T[described]), [captions_of[i] for i in described]
        )
        out[lang] = {
            "text_to_image": recall_at(t2i, ks),
            "image_to_text": recall_at(i2t, ks),
            "n_captions": len(rows),
        }
    return out


def separating_threshold(sim: npt.NDArray[np.float32], image_of: Sequence[int]) -> dict[str, float]:
    """The ``auto`` threshold of a caption x image score matrix (see the module docstring):
    the threshold, its balanced accuracy, and the true positive and negative rates."""
    n_caps, n_imgs = sim.shape
    labels = np.zeros((n_caps, n_imgs), dtype=bool)
    labels[np.arange(n_caps), np.asarray(image_of)] = True
    if labels.all():
        raise ValueError("a threshold needs non-matching pairs: the set has one image")
    order = np.argsort(sim, axis=None, kind="stable")
    scores = sim.ravel()[order].astype(np.float64)
    y = labels.ravel()[order]
    pos, neg = int(y.sum()), int((~y).sum())
    # Cut k: pairs [k:] are called matching. Only cuts between distinct scores count.
    pos_below = np.concatenate(([0], np.cumsum(y)))
    neg_below = np.concatenate(([0], np.cumsum(~y)))
    balanced = ((pos - pos_below) / pos + neg_below / neg) / 2.0
    valid = np.ones(len(scores) + 1, dtype=bool)
    valid[1:-1] = scores[1:] > scores[:-1]
    k = int(np.flatnonzero(valid & (balanced == balanced[valid].max()))[0])
    if k == 0:
        threshold = scores[0]
    elif k == len(scores):
        threshold = np.nextafter(scores[-1], np.inf)
    else:
        threshold = (scores[k - 1] + scores[k]) / 2.0
    return {
        "min_score": float(np.clip(threshold, -1.0, 1.0)),
        "balanced_accuracy": float(balanced[k]),
        "true_positive_rate": float((pos - pos_below[k]) / pos),
        "true_negative_rate": float(neg_below[k] / neg),
    }


def relevant_sets(
    image_of: Sequence[int], n_images: int
) -> tuple[list[list[int]], list[list[int]]]:
    """What counts as a hit: per caption its image; per image all of its captions."""
    captions_of: list[list[int]] = [[] for _ in range(n_images)]
    for c, i in enumerate(image_of):
        captions_of[i].append(c)
    return [[i] for i in image_of], captions_of


async def evaluate(encoder: Encoder, data: CaptionSet) -> dict[str, Any]:
    """Encode the set with ``encoder`` and compute both recalls, with counts and timing."""
    start = time.perf_counter()
    text_parts = [
        await encoder.encode_texts(data.captions[i : i + CHUNK])
        for i in range(0, len(data.captions), CHUNK)
    ]
    image_parts = []
    for i in range(0, len(data.images), CHUNK):
        blobs = [p.read_bytes() for p in data.images[i : i + CHUNK]]
        image_parts.append(await encoder.encode_images(blobs))
    text_vecs, image_vecs = np.concatenate(text_parts), np.concatenate(image_parts)
    result: dict[str, Any] = recalls(text_vecs, image_vecs, data.image_of)
    if len(data.images) > 1:
        result["threshold"] = separating_threshold(text_vecs @ image_vecs.T, data.image_of)
    if data.langs is not None:
        result["by_lang"] = recalls_by_lang(text_vecs, image_vecs, data.image_of, data.langs)
    result.update(
        model=encoder.model_name,
        fingerprint=encoder.fingerprint,
        mode=encoder.mode,
        runtime=getattr(encoder, "runtime", None),  # local encoder: fp32, int8, openvino
        n_images=len(data.images),
        n_captions=len(data.captions),
        seconds=round(time.perf_counter() - start, 3),
    )
    return result


def format_table(result: dict[str, Any]) -> str:
    """A small fixed-width table of the recalls."""
    ks = list(result["text_to_image"])
    lines = [
        f"model {result['model']} ({result['mode']}), {result['n_images']} images, "
        f"{result['n_captions']} captions, {result['seconds']} s"
        + (f", via {result['url']} collection {result['collection']}" if "url" in result else ""),
        f"{'direction':<15}" + "".join(f"{k:>8}" for k in ks),
    ]
    tables = [("all", result)]
    for lang, part in result.get("by_lang", {}).items():
        lines_lang = f"lang {lang}: {part['n_captions']} captions"
        tables.append((lines_lang, part))
    for title, table in tables:
        if title != "all":
            lines.append(title)
        for key, label in (("text_to_image", "text->image"), ("image_to_text", "image->text")):
            lines.append(f"{label:<15}" + "".join(f"{table[key][k]:>8.3f}" for k in ks))
    if "threshold" in result:
        t = result["threshold"]
        lines.append(
            f'min_score "auto" threshold {t["min_score"]:.4f} (balanced accuracy '
            f"{t['balanced_accuracy']:.3f}: {t['true_positive_rate']:.3f} of matching pairs "
            f"above, {t['true_negative_rate']:.3f} of the others below)"
        )
    return "\n".join(lines)
