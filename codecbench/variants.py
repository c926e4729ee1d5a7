"""Codec variants: a registered codec plus the options that change its bytes, named by one label.

Spec syntax (as libjxl's benchmark_xl names codecs): ``NAME[:KEY=VALUE,...]``,
e.g. ``jpeg2000:colorspace=yuv,wavelet=5/3`` or ``vvc:preset=faster``; or an
*alias*, a short name defined in a variants file (YAML, ``alias: spec``). The
built-in aliases are in ``codecbench/variants.yaml``; ``codecbench run
--variants FILE`` adds more (a user alias may not redefine a built-in one).

The **label** of a variant is what a results row stores in its ``codec``
column: the codec name, then its *identity* options (every option not in the
codec's ``runtime_options``), sorted by key, from the spec and from
``--codec-option``: ``jpeg2000:colorspace=yuv,wavelet=5/3``. A cell's key
holds the label, so a resumed run with other byte-changing options computes
new cells instead of reusing old ones, and every variant gets its own curve,
report label and baseline entries. Runtime options (paths, devices, threads,
timeouts) stay out of the label. Values are compared as written: ``preset=medium``
and no preset are two labels even when medium is the default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codecbench.errors import CodecError, UsageError

BUILTIN_VARIANTS = Path(__file__).with_name("variants.yaml")


@dataclass(frozen=True)
class CodecVariant:
    """One entry of ``--codecs``: the label stored with results, the registered codec, all its options."""

    label: str
    name: str
    options: dict[str, Any] = field(default_factory=dict)
    spec: str = ""  # as written on the command line (an alias or a spec)

    def picks(self, key: str) -> bool:
        """Whether a per-codec value keyed ``key`` (``--settings KEY=…``) is meant for this variant."""
        return key in (self.label, self.spec, self.name)

    def pick(self, values: dict[str, Any]) -> Any:
        """The value meant for this variant, most specific key first: label, spec (or alias), codec name."""
        return next((values[key] for key in (self.label, self.spec, self.name) if key in values), None)


def split_codec_list(text: str) -> list[str]:
    """Split ``--codecs`` at commas, keeping ``KEY=VALUE`` items with the spec before them.

    ``jpeg,jpeg2000:colorspace=yuv,wavelet=5/3,webp`` → ``["jpeg",
    "jpeg2000:colorspace=yuv,wavelet=5/3", "webp"]`` (codec names hold no ``=``).
    """
    specs: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if "=" in item and ":" not in item.split("=", 1)[0] and specs and ":" in specs[-1]:
            specs[-1] += f",{item}"
        else:
            specs.append(item)
    return specs


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``NAME:KEY=VALUE,...`` → (name, {key: value}); UsageError naming the bad part."""
    name, _, rest = spec.strip().partition(":")
    if not name or "=" in name:
        raise UsageError(f"codec spec {spec!r} must look like NAME or NAME:KEY=VALUE,... (e.g. vvc:preset=faster)")
    options: dict[str, str] = {}
    for pair in (p.strip() for p in rest.split(",")) if rest else ():
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UsageError(f"codec spec {spec!r}: {pair!r} must look like KEY=VALUE")
        if key.strip() in options:
            raise UsageError(f"codec spec {spec!r}: option {key.strip()!r} given twice")
        options[key.strip()] = value.strip()
    return name.strip(), options


def load_aliases(path: str | Path | None = None) -> dict[str, str]:
    """The built-in aliases, plus those of ``path`` (a YAML mapping alias → spec)."""
    aliases = _read_aliases(BUILTIN_VARIANTS)
    if path is not None:
        extra = _read_aliases(Path(path))
        clash = sorted(set(extra) & set(aliases))
        if clash:
            raise UsageError(f"{path}: alias(es) {', '.join(clash)} already defined by codecbench; choose other names")
        aliases.update(extra)
    return aliases


def _read_aliases(path: Path) -> dict[str, str]:
    import yaml

    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"{path}: cannot read codec variants ({exc})") from exc
    if not isinstance(document, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in document.items()):
        raise UsageError(f"{path}: codec variants must be a mapping of alias to spec, e.g. fast-vvc: vvc:preset=faster")
    for alias, spec in document.items():
        if ":" in alias or "=" in alias or "," in alias:
            raise UsageError(f"{path}: alias {alias!r} may not contain ':', '=' or ','")
        parse_spec(spec)
    return dict(document)


def variant_label(name: str, codec_class: type | None, options: dict[str, Any]) -> str:
    """The label of codec ``name`` with ``options``: the name plus its identity options, sorted."""
    runtime = set(getattr(codec_class, "runtime_options", ()))
    identity = sorted((key, str(value)) for key, value in options.items() if key not in runtime)
    return name + (":" + ",".join(f"{key}={value}" for key, value in identity) if identity else "")


def resolve(spec: str, aliases: dict[str, str], codec_options: dict[str, dict[str, Any]],
            codec_classes: dict[str, type | None]) -> CodecVariant:
    """The variant named by ``spec`` (a spec or an alias), with ``codec_options[name]`` added.

    ``codec_options`` are ``--codec-option`` values by codec name; they apply to
    every variant of that codec and may not contradict the spec.
    ``codec_classes`` maps registered names to their classes (None: failed to load).
    """
    name, options = parse_spec(aliases.get(spec, spec))
    for key, value in codec_options.get(name, {}).items():
        if key in options and str(options[key]) != str(value):
            raise UsageError(f"{spec}: --codec-option {name}.{key}={value} contradicts {key}={options[key]} of the spec")
        options[key] = value
    if name not in codec_classes:
        raise CodecError(f"unknown codec {name!r} in {spec!r}; known codecs: {', '.join(codec_classes)}; "
                         f"aliases: {', '.join(sorted(aliases)) or 'none'}")
    return CodecVariant(variant_label(name, codec_classes[name], options), name, options, spec)


def codec_name(spec: str, aliases: dict[str, str]) -> str:
    """The registered codec a spec or alias names."""
    return parse_spec(aliases.get(spec, spec))[0]

