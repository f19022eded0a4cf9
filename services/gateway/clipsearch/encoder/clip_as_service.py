"""clip-as-service's published ONNX models: their files and md5s, and clip-server's image
size per architecture (data, from clip-server 0.8; read by :mod:`model_files` and the catalog)."""

from __future__ import annotations

from collections.abc import Mapping

TEXTUAL_FILE = "textual.onnx"
VISUAL_FILE = "visual.onnx"

# (relative path under the base URL, md5) for the textual then the visual file.
FileSpec = tuple[str, str]
ModelTable = Mapping[str, tuple[FileSpec, FileSpec]]


def _p(folder: str, textual_md5: str, visual_md5: str) -> tuple[FileSpec, FileSpec]:
    return (f"{folder}/{TEXTUAL_FILE}", textual_md5), (f"{folder}/{VISUAL_FILE}", visual_md5)


# clip-server 0.8's table of published ONNX models (clip_server/model/clip_onnx.py): data.
ONNX_MODELS: ModelTable = {
    "RN50::openai": _p(
        "RN50", "722418bfe47a1f5c79d1f44884bb3103", "5761475db01c3abb68a5a805662dcd10"
    ),
    "RN50::yfcc15m": _p(
        "RN50-yfcc15m", "4ff2ea7228b9d2337b5440d1955c2108", "87daa9b4a67449b5390a9a73b8c15772"
    ),
    "RN50::cc12m": _p(
        "RN50-cc12m", "78fa0ae0ea47aca4b8864f709c48dcec", "0e04bf92f3c181deea2944e322ebee77"
    ),
    "RN101::openai": _p(
        "RN101", "2d9efb7d184c0d68a369024cedfa97af", "0297ebc773af312faab54f8b5a622d71"
    ),
    "RN101::yfcc15m": _p(
        "RN101-yfcc15m", "7aa2a4e3d5b960998a397a6712389f08", "681a72dd91c9c79464947bf29b623cb4"
    ),
    "RN50x4::openai": _p(
        "RN50x4", "d9d63d3fe35fb14d4affaa2c4e284005", "16afe1e35b85ad862e8bbdb12265c9cb"
    ),
    "RN50x16::openai": _p(
        "RN50x16", "1525785494ff5307cadc6bfa56db6274", "2a293d9c3582f8abe29c9999e47d1091"
    ),
    "RN50x64::openai": _p(
        "RN50x64", "3ae8ade74578eb7a77506c11bfbfaf2c", "1341f10b50b3aca6d2d5d13982cabcfc"
    ),
    "ViT-B-32::openai": _p(
        "ViT-B-32", "bd6d7871e8bb95f3cc83aff3398d7390", "88c6f38e522269d6c04a85df18e6370c"
    ),
    "ViT-B-32::laion2b_e16": _p(
        "ViT-B-32-laion2b_e16",
        "aa6eac88fe77d21f337e806417957497",
        "0cdc00a9dfad560153d40aced9df0c8f",
    ),
    "ViT-B-32::laion400m_e31": _p(
        "ViT-B-32-laion400m_e31",
        "832f417bf1b3f1ced8f9958eda71665c",
        "62326b925ae342313d4cc99c2741b313",
    ),
    "ViT-B-32::laion400m_e32": _p(
        "ViT-B-32-laion400m_e32",
        "93284915937ba42a2b52ae8d3e5283a0",
        "db220821a31fe9795fd8c2ba419078c5",
    ),
    "ViT-B-32::laion2B-s34B-b79K": _p(
        "ViT-B-32-laion2B-s34B-b79K",
        "84af5ae53da56464c76e67fe50fddbe9",
        "a2d4cbd1cf2632cd09ffce9b40bfd8bd",
    ),
    "ViT-B-16::openai": _p(
        "ViT-B-16", "6f0976629a446f95c0c8767658f12ebe", "d5c03bfeef1abbd9bede54a8f6e1eaad"
    ),
    "ViT-B-16::laion400m_e31": _p(
        "ViT-B-16-laion400m_e31",
        "5db27763c06c06c727c90240264bf4f7",
        "04a6a780d855a36eee03abca64cd5361",
    ),
    "ViT-B-16::laion400m_e32": _p(
        "ViT-B-16-laion400m_e32",
        "9abe000a51b6f1cbaac8fde601b16725",
        "d38c144ac3ad7fbc1966f88ff8fa522f",
    ),
    "ViT-B-16-plus-240::laion400m_e31": _p(
        "ViT-B-16-plus-240-laion400m_e31",
        "2b524e7a530a98010cc7e57756937c5c",
        "a78989da3300fd0c398a9877dd26a9f1",
    ),
    "ViT-B-16-plus-240::laion400m_e32": _p(
        "ViT-B-16-plus-240-laion400m_e32",
        "53c8d26726b386ca0749207876482907",
        "7a32c4272c1ee46f734486570d81584b",
    ),
    "ViT-L-14::openai": _p(
        "ViT-L-14", "325380b31af4837c2e0d9aba2fad8e1b", "53f5b319d3dc5d42572adea884e31056"
    ),
    "ViT-L-14::laion400m_e31": _p(
        "ViT-L-14-laion400m_e31",
        "36216b85e32668ea849730a54e1e09a4",
        "15fa5a24916e2a58325c5cf70350c300",
    ),
    "ViT-L-14::laion400m_e32": _p(
        "ViT-L-14-laion400m_e32",
        "8ba5b76ba71992923470c0261b10a67c",
        "49db3ba92bd816001e932530ad92d76c",
    ),
    "ViT-L-14::laion2B-s32B-b82K": _p(
        "ViT-L-14-laion2B-s32B-b82K",
        "da36a6cbed4f56abf576fdea8b6fe2ee",
        "1e337a190abba6a8650237dfae4740b7",
    ),
    "ViT-L-14-336::openai": _p(
        "ViT-L-14@336px", "78fab479f136403eed0db46f3e9e7ed2", "f3b1f5d55ca08d43d749e11f7e4ba27e"
    ),
    "ViT-H-14::laion2B-s32B-b79K": _p(
        "ViT-H-14-laion2B-s32B-b79K",
        "41e73c0c871d0e8e5d5e236f917f1ec3",
        "9c8213d09e2f8f35f684b468b0b0df17",
    ),
    "ViT-g-14::laion2B-s12B-b42K": _p(
        "ViT-g-14-laion2B-s12B-b42K",
        "e597b7ab4414ecd92f715d47e79a033f",
        "d51a6d197542793f1053f843baf6266c",
    ),
}

# clip-server's image size per architecture (the part of the name before "::").
VISUAL_IMAGE_SIZE: Mapping[str, int] = {
    "RN50": 224,
    "RN101": 224,
    "RN50x4": 288,
    "RN50x16": 384,
    "RN50x64": 448,
    "ViT-B-32": 224,
    "ViT-B-16": 224,
    "ViT-B-16-plus-240": 240,
    "ViT-L-14": 224,
    "ViT-L-14-336": 336,
    "ViT-H-14": 224,
    "ViT-g-14": 224,
    # clip-server's M-CLIP models, by full name: their open_clip image towers' sizes.
    "M-CLIP/XLM-Roberta-Large-Vit-B-32": 224,
    "M-CLIP/XLM-Roberta-Large-Vit-L-14": 224,
    "M-CLIP/XLM-Roberta-Large-Vit-B-16Plus": 240,
    "M-CLIP/LABSE-Vit-L-14": 224,
}


def image_size_for_name(name: str) -> int | None:
    """The input resolution clip-server uses for ``name``, or None for unknown names."""
    return VISUAL_IMAGE_SIZE.get(name) or VISUAL_IMAGE_SIZE.get(name.split("::", 1)[0])
