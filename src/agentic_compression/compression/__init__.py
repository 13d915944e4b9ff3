"""Compression methods: one module per family (config + registered handler), applied by ``compress``.

Example:
    >>> from agentic_compression.compression import compress, preset    # doctest: +SKIP
    >>> reports = compress(model, preset("wanda-30+int8"), context)       # doctest: +SKIP
"""

from agentic_compression.compression.apply import CompressionContext, compress
from agentic_compression.compression.presets import PRESETS, preset, resolve_recipe

__all__ = ["PRESETS", "CompressionContext", "compress", "preset", "resolve_recipe"]
