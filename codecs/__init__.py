"""Built-in codec plugins, installed as the package ``codecbench_codecs``.

This folder is never importable as ``codecs`` (that would shadow Python's
standard library); each codec is registered through the
``codecbench.codecs`` entry-point group in ``pyproject.toml``.
"""
