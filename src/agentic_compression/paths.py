"""Where the package keeps its caches (converted models, evaluation cache, carbon readings), and
how it replaces an output file atomically.

``AGENTIC_COMPRESSION_HOME`` overrides the default ``~/.cache/agentic_compression``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def home() -> Path:
    root = os.environ.get("AGENTIC_COMPRESSION_HOME")
    path = Path(root) if root else Path.home() / ".cache" / "agentic_compression"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """A staging path to write ``path``'s new content to; it replaces ``path`` in one rename when
    the block ends without error, so readers see the old file or the new one, never half of one.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_output(target) as staging:
    ...     _ = staging.write_text("done")
    >>> target.read_text()
    'done'
    """
    staging = path.with_name(f".{path.name}.partial")
    try:
        yield staging
        staging.replace(path)
    finally:
        staging.unlink(missing_ok=True)
