"""Is the Hugging Face hub there? Asked once per process, in at most a few seconds, so that work
which needs the hub fails fast and plainly instead of after a minute of the libraries' retries.

The hub counts as unavailable when ``HF_HUB_OFFLINE`` or ``HF_DATASETS_OFFLINE`` is set, or when a
TCP connection to the endpoint (``HF_ENDPOINT``, default huggingface.co:443) cannot be opened.
"""

from __future__ import annotations

import functools
import os
import socket
from urllib.parse import urlsplit

#: Seconds to wait for the TCP connection to the hub.
PROBE_TIMEOUT_S = 3.0


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def hub_switched_off() -> bool:
    """True when the Hugging Face libraries are told not to reach the hub."""
    return _truthy(os.environ.get("HF_HUB_OFFLINE")) or _truthy(
        os.environ.get("HF_DATASETS_OFFLINE")
    )


@functools.cache
def _reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
    except OSError:
        return False
    return True


def hub_unavailable() -> str | None:
    """Why the hub cannot be used now (switched off, or unreachable), or None when it can."""
    if hub_switched_off():
        return "the hub is switched off (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE)"
    endpoint = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    if not _reachable(host, port):
        return f"the hub ({host}:{port}) cannot be reached from this machine"
    return None
