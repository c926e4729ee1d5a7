"""Codec discovery through the ``codecbench.codecs`` entry-point group.

Built-in codecs are registered in codecbench's own ``pyproject.toml``, in the
same group a third-party plugin uses, so there is one discovery path. A plugin
that fails to import is listed as unavailable with the import error, and never
breaks the other codecs.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from codecbench.codec import Codec, CodecInfo
from codecbench.errors import CodecError, CodecUnavailable, UsageError
from codecbench.plugins import Availability
from codecbench.variants import CodecVariant, parse_spec, resolve

ENTRY_POINT_GROUP = "codecbench.codecs"


@dataclass(frozen=True)
class RegisteredCodec:
    name: str
    target: str  # "module:attribute"
    codec_class: type[Codec] | None
    load_error: str = ""


def discover() -> dict[str, RegisteredCodec]:
    """All codecs registered in the entry-point group, by name (sorted)."""
    found: dict[str, RegisteredCodec] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in found:
            continue  # first registration wins, like pytest plugins
        try:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, Codec)):
                raise TypeError(f"{ep.value} is not a codecbench.codec.Codec subclass")
            found[ep.name] = RegisteredCodec(ep.name, ep.value, cls)
        except Exception as exc:  # a broken plugin must not hide the others
            found[ep.name] = RegisteredCodec(ep.name, ep.value, None, f"{type(exc).__name__}: {exc}")
    return dict(sorted(found.items()))


def codec_names() -> list[str]:
    return list(discover())


def create(spec: str, **options: Any) -> Codec:
    """Instantiate a registered codec by name or label (``name:key=value,...``, :mod:`codecbench.variants`).

    ``options`` add to (and win over) the label's; CodecError (unknown) or CodecUnavailable (cannot run).
    """
    name, spec_options = parse_spec(spec)
    options = {**spec_options, **options}
    registered = discover().get(name)
    if registered is None:
        raise CodecError(f"unknown codec {name!r}; known codecs: {', '.join(codec_names())}")
    if registered.codec_class is None:
        raise CodecUnavailable(f"codec {name} could not be loaded from {registered.target}: {registered.load_error}")
    codec = registered.codec_class(**options)
    status = codec.availability()
    if not status.ok:
        raise CodecUnavailable(f"codec {name} is unavailable: {status.reason}")
    return codec


def describe_all(options: dict[str, dict[str, Any]] | None = None) -> list[CodecInfo]:
    """One CodecInfo per registered codec, for ``codecbench codecs``."""
    options = options or {}
    infos = []
    for name, registered in discover().items():
        cls = registered.codec_class
        if cls is None:
            infos.append(CodecInfo(name, "(failed to load)", "-", "-", False, registered.load_error, registered.target))
            continue
        size: dict[str, int] = {}
        try:
            codec = cls(**options.get(name, {}))
            status = codec.availability()
            version = codec.version() if status.ok else "-"
            size = codec.model_size() if status.ok else {}
        except Exception as exc:
            status, version = Availability(False, f"{type(exc).__name__}: {exc}"), "-"
        infos.append(
            CodecInfo(name, cls.description, version, cls.setting.describe(), status.ok, status.reason, registered.target, **size)
        )
    return infos


def resolve_variants(specs: list[str], aliases: dict[str, str],
                     codec_options: dict[str, dict[str, Any]]) -> dict[str, CodecVariant]:
    """Every spec of ``--codecs`` as a variant of a registered codec, by label; UsageError on a repeat."""
    classes = {name: registered.codec_class for name, registered in discover().items()}
    variants: dict[str, CodecVariant] = {}
    for spec in specs:
        variant = resolve(spec, aliases, codec_options, classes)
        if variant.label in variants:
            raise UsageError(f"--codecs names {variant.label} twice ({variants[variant.label].spec}, {spec})")
        variants[variant.label] = variant
    return variants
