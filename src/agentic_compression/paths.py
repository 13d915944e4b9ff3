"""Where the package keeps its caches (converted models, evaluation cache, carbon readings).

``AGENTIC_COMPRESSION_HOME`` overrides the default ``~/.cache/agentic_compression``.
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    root = os.environ.get("AGENTIC_COMPRESSION_HOME")
    path = Path(root) if root else Path.home() / ".cache" / "agentic_compression"
    path.mkdir(parents=True, exist_ok=True)
    return path
