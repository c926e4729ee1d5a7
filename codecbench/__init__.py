"""codecbench: benchmark lossy image codecs, classical and learned."""

__version__ = "0.1.0"
