"""What the two towers compute, whatever runs them: token ids -> vector, pixels -> vector.

The text tower's inputs come from the graph, not from the model's name:

* ``input_ids`` + ``attention_mask`` (clip-server's export, Immich's M-CLIP export):
  :class:`ClipTextual`. Padding is masked out (CLIP's causal tower pools at the end token,
  M-CLIP mean-pools over the mask), so a graph with a dynamic sequence axis is fed only up
  to the longest real sequence of the batch.
* ``text`` alone (Immich's open_clip exports: CLIP, SigLIP, NLLB-CLIP): :class:`TextOnly`.
  There is no mask, and SigLIP pools at the last position, so the ids are always fed at the
  full context length, padded with the tokenizer's pad id.

The image tower takes ``pixel_values`` (clip-server) or ``image`` (Immich). How a graph runs
(runtime, threads, fixed batch sizes) is the :class:`~clipsearch.encoder.session.Session`'s
business: ONNX Runtime or OpenVINO, the towers do not know which.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from clipsearch.encoder.protocol import EncoderError, Vectors
from clipsearch.encoder.session import Session

TokenIds = npt.NDArray[np.int32]
VISUAL_INPUTS = ("pixel_values", "image")


def l2_normalise(x: npt.NDArray[np.float32]) -> Vectors:
    """Rows scaled to unit length (a zero row stays zero instead of becoming NaN)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    out: Vectors = (x / np.maximum(norms, np.float32(1e-12))).astype(np.float32, copy=False)
    return out


def _fit(a: TokenIds, length: int, pad: int = 0) -> TokenIds:
    """Cut or pad (with ``pad``) the sequence axis to ``length``."""
    if a.shape[1] >= length:
        return a[:, :length]
    fill = np.full((a.shape[0], length - a.shape[1]), pad, dtype=a.dtype)
    return np.concatenate([a, fill], axis=1)


def _seq_length(session: Session, name: str) -> int | None:
    shape = session.input_shape(name)
    seq = shape[1] if len(shape) == 2 else None
    return seq if isinstance(seq, int) else None


class ClipTextual:
    """A text tower on ``input_ids`` + ``attention_mask`` [B,L] -> L2-normalised [B,D].

    If the graph's sequence axis is dynamic, padding is trimmed to the longest real
    sequence in the batch (the result is the same and much cheaper); if it is fixed,
    batches are cut or padded to it.
    """

    inputs = ("input_ids", "attention_mask")

    def __init__(self, session: Session, *, pad_id: int = 0) -> None:
        self.session = session
        session.input_shape("attention_mask")  # clip-server always feeds it: require it too.
        self.fixed_length: int | None = _seq_length(session, "input_ids")
        self.pad_id = pad_id

    @property
    def dynamic(self) -> bool:
        return self.fixed_length is None

    def encode(self, ids: TokenIds, mask: TokenIds) -> Vectors:
        length = int(mask.sum(axis=1).max()) if len(mask) else 1
        if self.fixed_length is not None:
            length = self.fixed_length
        ids, mask = _fit(ids, length, self.pad_id), _fit(mask, length)
        return l2_normalise(self.session.run({"input_ids": ids, "attention_mask": mask}))


class TextOnly:
    """A text tower on ``text`` ids [B,L] alone (open_clip's export) -> L2-normalised [B,D].

    Never trimmed: without a mask the padding is part of the input.
    """

    inputs = ("text",)
    dynamic = False

    def __init__(self, session: Session, *, pad_id: int = 0) -> None:
        self.session = session
        self.fixed_length: int | None = _seq_length(session, "text")
        self.pad_id = pad_id

    def encode(self, ids: TokenIds, mask: TokenIds) -> Vectors:
        del mask  # the graph has no mask input; padding ids carry it
        if self.fixed_length is not None:
            ids = _fit(ids, self.fixed_length, self.pad_id)
        return l2_normalise(self.session.run({"text": ids}))


TextTower = ClipTextual | TextOnly


def text_tower(session: Session, *, pad_id: int = 0) -> TextTower:
    """The tower class the graph's inputs call for."""
    names = set(session.input_names)
    if "input_ids" in names:
        return ClipTextual(session, pad_id=pad_id)
    if "text" in names:
        return TextOnly(session, pad_id=pad_id)
    raise EncoderError(
        f"{session.path}: a text tower takes input_ids+attention_mask or text, "
        f"not {', '.join(sorted(names))}"
    )


class ClipVisual:
    """An image tower: normalised pixels float32 [B,3,S,S] -> L2-normalised [B,D]."""

    def __init__(self, session: Session) -> None:
        self.session = session
        names = [n for n in VISUAL_INPUTS if n in session.input_names]
        if not names:
            session.input_shape(VISUAL_INPUTS[0])  # raises, naming the inputs it has
        self.input_name = names[0]
        shape = session.input_shape(self.input_name)
        side = shape[-1] if len(shape) == 4 else None
        self.graph_image_size: int | None = side if isinstance(side, int) else None

    def encode(self, pixels: npt.NDArray[np.float32]) -> Vectors:
        return l2_normalise(self.session.run({self.input_name: pixels}))
