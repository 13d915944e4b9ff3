"""Imports every built-in method family so that each registers its configs and handlers.

The family modules import only pydantic at module level; torch, torchao and bitsandbytes are imported
inside the handlers, so listing methods stays cheap. The import order is the registration order, which
is the order of the search space's choices (casts first, per-layer mixed precision after the uniform
formats).
"""

# isort: skip_file
from agentic_compression.compression import precision  # noqa: F401
from agentic_compression.compression import pruning  # noqa: F401
from agentic_compression.compression import quantization  # noqa: F401
from agentic_compression.compression import mixed_precision  # noqa: F401
from agentic_compression.compression import autoround  # noqa: F401
from agentic_compression.compression import recovery  # noqa: F401
from agentic_compression.compression import structured  # noqa: F401
