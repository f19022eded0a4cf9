"""The model registry: extras are built once, lazily, and found by name or fingerprint; one
that cannot be built is reported, not fatal."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.unit.usecase_fakes import FakeEncoder

from clipsearch.encoder.protocol import Encoder, EncoderError
from clipsearch.encoder.registry import ExtraModel, ModelRegistry


def test_entries_parse_as_path_or_name_equals_path() -> None:
    assert ExtraModel.parse("/m/a") == ExtraModel(Path("/m/a"))
    assert ExtraModel.parse(" old = /m/b ") == ExtraModel(Path("/m/b"), "old")


def test_extras_are_built_once_on_first_use_and_found_by_name_or_fingerprint() -> None:
    built: list[Path] = []

    def build(spec: ExtraModel) -> Encoder:
        built.append(spec.path)
        if spec.path.name == "broken":
            raise EncoderError("no textual.onnx")
        return FakeEncoder(fingerprint=f"fp-{spec.path.name}")

    main = FakeEncoder("fp-main")
    reg = ModelRegistry(main, [ExtraModel(Path("/m/a"), "a"), ExtraModel(Path("/m/broken"))], build)
    assert built == []  # nothing loaded at start-up
    assert reg.by_fingerprint("fp-main") is main
    assert built == []  # the main model needs no extra
    extra = reg.by_fingerprint("fp-a")
    assert extra is not None
    assert extra.fingerprint == "fp-a"
    assert reg.by_name("a") is extra
    assert reg.by_name("fp-a") is extra
    assert reg.by_name("fake-model") is main  # the main model's own name comes first
    assert reg.by_fingerprint("fp-none") is None
    assert reg.by_name("none") is None
    assert built == [Path("/m/a"), Path("/m/broken")]  # once each
    assert "no textual.onnx" in reg.errors["/m/broken"]
    assert reg.names() == ["fake-model", "a"]
    asyncio.run(reg.close())
