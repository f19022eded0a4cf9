"""clipsearch: self-hosted image<->text search over CLIP and Milvus."""

__version__ = "0.1.0"
