"""Imports every built-in method family so that each registers its configs and handlers.

The family modules import only pydantic at module level; torch, torchao and bitsandbytes are imported
inside the handlers, so listing methods stays cheap.
"""

from agentic_compression.compression import (  # noqa: F401
    precision,
    pruning,
    quantization,
    recovery,
    structured,
)
