"""AVIF (AV1 still image) through libavif and the libaom encoder: ``avif``.

Encoding goes through whichever AVIF plugin Pillow has registered after
``import pillow_avif`` (the pillow-avif-plugin replaces Pillow's native AVIF
plugin when it is installed; recent Pillow releases have a native one); the
version string records which one, its libavif version and the aom version.

Conventions: full-range BT.601 YCbCr 4:2:0 (the ``nclx`` box says BT.709
primaries, sRGB transfer, matrix 6, full range; 4:2:0 is the common AVIF
default), 8-bit, ``quality`` 0–100
(libavif's quality scale, mapped to AV1 quantisers), encoder ``aom`` at
``speed`` 6 (libavif's default, 0 = slowest/best – 10 = fastest), automatic
tiling, and a single encoder thread: libaom's output differs between one
thread and several, so a fixed count keeps the bytes identical on every
machine. The bytes are the whole AVIF (ISOBMFF) file with no EXIF, XMP or ICC.
"""

from __future__ import annotations

import importlib
import re
from types import ModuleType

import PIL
from PIL import Image

from codecbench.codec import SettingSpec
from codecbench.plugins import Availability
from codecbench_codecs._pillow_io import PillowCodec

try:  # the plugin registers itself over Pillow's native AVIF support
    import pillow_avif  # noqa: F401
except ImportError:
    pillow_avif = None

ENCODER = "aom"
SPEED = 6
THREADS = 1


def _registered_avif_module() -> ModuleType | None:
    """The C extension (``_avif``) behind the AVIF plugin Pillow currently uses, or None."""
    Image.init()
    save = Image.SAVE.get("AVIF")
    if save is None:
        return None
    plugin_package = save.__module__.split(".")[0]  # "PIL" or "pillow_avif"
    return importlib.import_module(f"{plugin_package}._avif")


class AvifCodec(PillowCodec):
    """AVIF, libaom at speed 6, 4:2:0, one thread."""

    name = "avif"
    description = f"AVIF (libavif + aom via Pillow), 4:2:0, speed {SPEED}"
    # Kodak 1–8: 0.11 to 1.97 bpp
    setting = SettingSpec("quality", 0, 100, higher_is_better=True, default_sweep=(8, 15, 25, 35, 45, 55, 65, 75, 85))
    pillow_options = {
        "subsampling": "4:2:0", "speed": SPEED, "codec": ENCODER, "range": "full", "max_threads": THREADS
    }
    pillow_format = "AVIF"

    def version(self) -> str:
        extension = _registered_avif_module()
        plugin = (
            f"pillow-avif-plugin {pillow_avif.__version__}"
            if extension.__name__.startswith("pillow_avif")
            else f"Pillow {PIL.__version__} native AVIF"
        )
        aom = re.search(r"aom \[enc\]:([^,\s]+)", extension.codec_versions())
        return f"libavif {extension.libavif_version}, aom {aom.group(1) if aom else '?'}, {plugin}"

    def availability(self) -> Availability:
        extension = _registered_avif_module()
        if extension is None:
            return Availability(False, "no AVIF support in Pillow; pip install pillow-avif-plugin")
        if not extension.encoder_codec_available(ENCODER):
            return Availability(
                False, f"the registered AVIF plugin ({extension.__name__}) has no aom encoder; pip install pillow-avif-plugin"
            )
        return Availability(True)
