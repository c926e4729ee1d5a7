"""codecbench: benchmark lossy image codecs, classical and learned.

The Python API (:mod:`codecbench.api`) is imported on first use, so that
``import codecbench`` stays fast::

    import codecbench
    frame = codecbench.run(["jpeg", "webp"], "sample", results="results/nb")
    codecbench.load("results/nb")
    codecbench.bd_rate(rate_a, psnr_a, rate_b, psnr_b)
    codecbench.report("results/nb")
"""

__version__ = "0.1.0"

_API = ("run", "load", "bd_rate", "bd_quality", "report")
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from codecbench import api

        return getattr(api, name)
    raise AttributeError(f"module 'codecbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
