"""Encode and decode time of every built-in codec on one Kodak-sized image (768×512 RGB).

Each codec runs at the middle of its default sweep (``setting.default_sweep[len // 2]``);
a codec that cannot run here (missing program, library or weights) is skipped with
its reason. Times are wall-clock seconds of one ``encode``/``decode`` call, the
same calls the runner times; ``extra_info`` records the setting, bytes and bpp.
"""

from __future__ import annotations

import pytest

from codecbench import registry
from codecbench.codec import Codec
from codecbench.errors import CodecUnavailable
from codecbench.runner import bits_per_pixel

CODEC_NAMES = registry.codec_names()


def mid_setting(codec: Codec) -> float | int:
    """The middle entry of the codec's default sweep."""
    sweep = codec.setting.default_sweep
    return codec.setting.validate(sweep[len(sweep) // 2])


@pytest.fixture(scope="module", params=CODEC_NAMES)
def codec(request: pytest.FixtureRequest) -> Codec:
    try:
        return registry.create(request.param)
    except CodecUnavailable as exc:
        pytest.skip(str(exc))


def _describe(benchmark, codec: Codec, image_source: str, setting: float | int, data: bytes, width: int,
              height: int) -> None:
    benchmark.extra_info.update(codec=codec.name, image=image_source, setting=setting, bytes=len(data),
                                bpp=round(bits_per_pixel(len(data), width, height), 4))


@pytest.mark.benchmark(group="codec encode", min_rounds=3)
def test_encode(benchmark, codec: Codec, kodak_sized_image) -> None:
    source, image = kodak_sized_image
    setting = mid_setting(codec)
    data = benchmark(codec.encode, image, setting)
    _describe(benchmark, codec, source, setting, data, image.shape[1], image.shape[0])
    assert len(data) > 0


@pytest.mark.benchmark(group="codec decode", min_rounds=3)
def test_decode(benchmark, codec: Codec, kodak_sized_image) -> None:
    source, image = kodak_sized_image
    setting = mid_setting(codec)
    data = codec.encode(image, setting)
    decoded = benchmark(codec.decode, data)
    _describe(benchmark, codec, source, setting, data, image.shape[1], image.shape[0])
    assert decoded.shape == image.shape
