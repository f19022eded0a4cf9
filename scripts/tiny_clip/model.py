"""A small CLIP: ViT image tower and causal text transformer over CLIP's BPE ids.

Written to export cleanly to ONNX with a *dynamic* text length: attention is spelled out
(no fused kernels, which make the exporter bake in the sequence length), and the text
tower slices its positional embedding and causal mask to the input length.

The text tower keeps embeddings only for the BPE tokens its training captions use: a fixed
table maps every one of CLIP's 49,408 ids to a row of a compact embedding (row 0 for any
token never seen in training). Untrained rows would be noise anyway, and a full table would
cost 49,408 x width floats - most of the 25 MB budget.

The bilingual variant (``text_pooling="mean"``) reads ids of its own WordPiece tokenizer
(``scripts/tiny_clip/tokenizer.py``, ``vocab_size`` rows, no lookup table): attention is
bidirectional with padding keys masked, and the output is the mean of the final token states
over ``attention_mask`` (the ``[CLS]`` and ``[SEP]`` tokens included), then projected. Mean
pooling, as M-CLIP does, makes the result independent of the padded length, so Immich's
padding to ``context_length`` and a trimmed batch give the same vector.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F  # noqa: N812 - the conventional name
from torch import nn

CLIP_VOCAB_SIZE = 49408
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class TinyClipConfig:
    """Sizes of both towers; saved next to the weights."""

    image_size: int = 224
    patch_size: int = 32
    vision_width: int = 128
    vision_layers: int = 4
    vision_heads: int = 4
    context_length: int = 77
    text_width: int = 128
    text_layers: int = 3
    text_heads: int = 4
    embed_dim: int = 128
    # "eot": CLIP BPE ids, causal, pooled at the end-of-text token. "mean": ids of a
    # tokenizer of vocab_size entries, bidirectional, mean over the attention mask.
    text_pooling: str = "eot"
    vocab_size: int = 0

    def as_dict(self) -> dict[str, int | str]:
        """Plain dict for checkpoints and metadata."""
        return asdict(self)


class Attention(nn.Module):
    """Multi-head self-attention with an optional additive mask, written out for export."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = width // heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        batch, length, width = x.shape
        qkv = self.qkv(x).reshape(batch, length, 3, self.heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.head_dim))
        if mask is not None:
            scores = scores + mask
        attended = scores.softmax(dim=-1) @ v
        return self.out(attended.transpose(1, 2).reshape(batch, length, width))


class Block(nn.Module):
    """Pre-norm transformer block (CLIP's residual attention block)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = Attention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), mask)
        return x + self.mlp(self.ln_2(x))


class VisionTower(nn.Module):
    """ViT: patches -> class token -> transformer -> projected class token."""

    def __init__(self, cfg: TinyClipConfig) -> None:
        super().__init__()
        grid = cfg.image_size // cfg.patch_size
        width = cfg.vision_width
        scale = width**-0.5
        self.patch = nn.Conv2d(3, width, cfg.patch_size, stride=cfg.patch_size, bias=False)
        self.cls = nn.Parameter(scale * torch.randn(width))
        self.pos = nn.Parameter(scale * torch.randn(grid * grid + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.blocks = nn.ModuleList(
            Block(width, cfg.vision_heads) for _ in range(cfg.vision_layers)
        )
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, cfg.embed_dim))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.patch(pixels).flatten(2).transpose(1, 2)
        cls = self.cls.reshape(1, 1, -1).expand(x.shape[0], 1, x.shape[2])
        x = self.ln_pre(torch.cat([cls, x], dim=1) + self.pos)
        for block in self.blocks:
            x = block(x)
        return self.ln_post(x[:, 0]) @ self.proj


class TextTower(nn.Module):
    """Causal transformer over CLIP BPE ids, pooled at the end-of-text token (max id)."""

    def __init__(self, cfg: TinyClipConfig, token_ids: Sequence[int]) -> None:
        super().__init__()
        width = cfg.text_width
        lookup = torch.zeros(CLIP_VOCAB_SIZE, dtype=torch.long)
        for row, token in enumerate(sorted(set(token_ids)), start=1):
            lookup[token] = row
        self.register_buffer("lookup", lookup)
        self.token = nn.Embedding(len(set(token_ids)) + 1, width)
        nn.init.normal_(self.token.weight, std=0.02)
        self.pos = nn.Parameter(0.01 * torch.randn(cfg.context_length, width))
        causal = torch.full((cfg.context_length, cfg.context_length), float("-inf")).triu(1)
        self.register_buffer("causal", causal)
        self.blocks = nn.ModuleList(Block(width, cfg.text_heads) for _ in range(cfg.text_layers))
        self.ln_final = nn.LayerNorm(width)
        self.proj = nn.Parameter(width**-0.5 * torch.randn(width, cfg.embed_dim))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        ids = input_ids.long()
        length = ids.shape[1]
        x = self.token(self.lookup[ids]) + self.pos[:length]
        # Padding keys come after the end-of-text token, which the causal mask hides already
        # from every position that is pooled: masking them too changes no output, but makes
        # the graph consume `attention_mask`, which clip-server always feeds.
        padding = (1.0 - attention_mask.to(x.dtype)) * -1e9
        mask = self.causal[:length, :length].unsqueeze(0) + padding[:, None, None, :]
        for block in self.blocks:
            x = block(x, mask)
        x = self.ln_final(x)
        pooled = x[torch.arange(x.shape[0]), ids.argmax(dim=-1)]
        return pooled @ self.proj


class MeanTextTower(nn.Module):
    """Bidirectional transformer over a small tokenizer's ids, mean-pooled over the mask."""

    def __init__(self, cfg: TinyClipConfig) -> None:
        super().__init__()
        width = cfg.text_width
        self.token = nn.Embedding(cfg.vocab_size, width)
        nn.init.normal_(self.token.weight, std=0.02)
        self.pos = nn.Parameter(0.01 * torch.randn(cfg.context_length, width))
        self.blocks = nn.ModuleList(Block(width, cfg.text_heads) for _ in range(cfg.text_layers))
        self.ln_final = nn.LayerNorm(width)
        self.proj = nn.Parameter(width**-0.5 * torch.randn(width, cfg.embed_dim))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        length = input_ids.shape[1]
        x = self.token(input_ids.long()) + self.pos[:length]
        keep = attention_mask.to(x.dtype)
        # Padding keys get -1e9: their softmax weight is exactly 0 in fp32, so padded and
        # trimmed inputs give the same states at the real positions.
        mask = ((1.0 - keep) * -1e9)[:, None, None, :]
        for block in self.blocks:
            x = block(x, mask)
        x = self.ln_final(x)
        pooled = (x * keep[:, :, None]).sum(dim=1) / keep.sum(dim=1, keepdim=True).clamp(min=1.0)
        return pooled @ self.proj


class TinyClip(nn.Module):
    """Both towers plus CLIP's learned temperature."""

    def __init__(self, cfg: TinyClipConfig, token_ids: Sequence[int] = ()) -> None:
        super().__init__()
        self.cfg = cfg
        self.visual = VisionTower(cfg)
        self.textual: nn.Module = (
            MeanTextTower(cfg) if cfg.text_pooling == "mean" else TextTower(cfg, token_ids)
        )
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def loss(
        self, pixels: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """Symmetric InfoNCE over the batch (row i of each modality is a positive pair)."""
        image = F.normalize(self.visual(pixels), dim=-1)
        text = F.normalize(self.textual(input_ids, attention_mask), dim=-1)
        logits = self.logit_scale.clamp(max=math.log(100)).exp() * image @ text.t()
        target = torch.arange(logits.shape[0])
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2

    def loss_captions(
        self, pixels: torch.Tensor, captions: Sequence[tuple[torch.Tensor, torch.Tensor]]
    ) -> torch.Tensor:
        """InfoNCE of the pictures against each caption set (e.g. English and Chinese), averaged:
        the image tower runs once, every picture meets all of its captions in the step."""
        image = F.normalize(self.visual(pixels), dim=-1)
        scale = self.logit_scale.clamp(max=math.log(100)).exp()
        target = torch.arange(image.shape[0])
        total = image.new_zeros(())
        for input_ids, attention_mask in captions:
            text = F.normalize(self.textual(input_ids, attention_mask), dim=-1)
            logits = scale * image @ text.t()
            total = total + F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)
        return total / (2 * len(captions))


class TextualExport(nn.Module):
    """``(input_ids, attention_mask)`` -> projected text embedding, as clip-server feeds it."""

    def __init__(self, model: TinyClip) -> None:
        super().__init__()
        self.tower = model.textual

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.tower(input_ids, attention_mask)


class VisualExport(nn.Module):
    """``pixel_values`` (CLIP-normalised) -> projected image embedding."""

    def __init__(self, model: TinyClip) -> None:
        super().__init__()
        self.tower = model.visual

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.tower(pixel_values)
