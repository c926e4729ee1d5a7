"""Lossy JPEG XL through libjxl (pillow-jxl-plugin): ``jpegxl``.

Conventions: VarDCT lossy coding in libjxl's XYB colour space from sRGB
input, ``effort`` 7 (libjxl's default, 1 = fastest – 9 = slowest), decoding
speed 0 (libjxl's default, densest). The setting is JPEG-style ``quality``
0–99, which libjxl itself maps to its native butteraugli distance with
``JxlEncoderDistanceFromQuality`` (quality ≥ 30: distance = 0.1 + (100 − q) ×
0.09, so q 90 → d 1.0 "visually lossless"; below 30 the distance rises
quadratically to 25 at q 0); quality is used rather than distance so that,
like every other built-in codec, higher means better. The range stops at 99
(distance 0.19): quality 100 means distance 0, which libjxl refuses outside
its lossless mode. libjxl's output does not depend on the thread count.

The bytes are the bare JPEG XL codestream (starting ``FF 0A``), without the
ISOBMFF container and with no EXIF, XMP or JUMBF boxes.
"""

from __future__ import annotations

import json
from importlib import metadata

import pillow_jxl  # noqa: F401  (registers the JXL plugin with Pillow)

from codecbench.codec import SettingSpec
from codecbench_codecs._pillow_io import PillowCodec

EFFORT = 7
PLUGIN_DISTRIBUTION = "pillow-jxl-plugin"


def _bundled_libjxl_version() -> str:
    """libjxl version the plugin's wheel was built with, from its CycloneDX SBOM (``jpegxl-src``)."""
    for file in metadata.distribution(PLUGIN_DISTRIBUTION).files or ():
        if file.name.endswith(".cyclonedx.json"):
            components = json.loads(file.read_text()).get("components", [])
            for component in components:
                if component.get("name") == "jpegxl-src":
                    return component.get("version", "unknown")
    return "unknown"


class JpegXlCodec(PillowCodec):
    """JPEG XL lossy, effort 7, JPEG-style quality."""

    name = "jpegxl"
    description = f"JPEG XL lossy (libjxl via pillow-jxl-plugin), effort {EFFORT}"
    # Kodak 1–8: 0.17 (the floor, d 25) to 2.0 bpp
    setting = SettingSpec("quality", 0, 99, higher_is_better=True, default_sweep=(0, 10, 20, 30, 45, 60, 75, 85, 90))
    pillow_options = {"effort": EFFORT, "lossless": False, "use_container": False}
    pillow_format = "JXL"

    def version(self) -> str:
        plugin = metadata.version(PLUGIN_DISTRIBUTION)
        return f"libjxl {_bundled_libjxl_version()}, {PLUGIN_DISTRIBUTION} {plugin}"
