"""The pixel fast path is a declared capability: found by type, kept through the wrapper."""

from __future__ import annotations

import numpy as np
from PIL import Image
from tests.unit.usecase_fakes import FakeEncoder

from clipsearch.bootstrap.instrument import InstrumentedEncoder, InstrumentedPixels
from clipsearch.core.metrics import Metrics
from clipsearch.encoder.protocol import PixelEncoder, PixelTensor, Vectors, pixel_path


class PixelFake(FakeEncoder):
    def input_size(self) -> int:
        return 4

    def preprocess(self, image: Image.Image) -> PixelTensor:
        return np.zeros((3, 4, 4), dtype=np.float32) + image.width

    def encode_pixels(self, pixels: PixelTensor) -> Vectors:
        return np.ones((len(pixels), 8), dtype=np.float32)


def test_remote_like_encoder_has_no_pixel_path() -> None:
    assert pixel_path(FakeEncoder()) is None
    assert pixel_path(InstrumentedEncoder(FakeEncoder(), Metrics())) is None


def test_pixel_path_is_found_and_measured_through_the_wrapper() -> None:
    inner = PixelFake()
    assert pixel_path(inner) is inner
    metrics = Metrics()
    found = pixel_path(InstrumentedEncoder(inner, metrics))
    assert isinstance(found, InstrumentedPixels)
    assert isinstance(found, PixelEncoder)
    assert found.input_size() == 4
    tensor = found.preprocess(Image.new("RGB", (7, 5)))
    assert tensor.shape == (3, 4, 4)
    assert found.encode_pixels(np.stack([tensor, tensor])).shape == (2, 8)
