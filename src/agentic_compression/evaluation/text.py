"""Held-out evaluation text: WikiText-2 raw test, shipped with the package (see data/SOURCES.md)."""

from __future__ import annotations

import gzip
import json
from importlib import resources

WIKITEXT2_TEST = "wikitext-2-raw-v1 test"


def wikitext2_test() -> str:
    """The 62 pages of WikiText-2 raw test, joined as lm-eval's document-level task reads them."""
    raw = (
        resources.files("agentic_compression.data") / "wikitext-2-raw-v1-test.jsonl.gz"
    ).read_bytes()
    pages = [json.loads(line)["page"] for line in gzip.decompress(raw).decode().splitlines()]
    return "\n\n".join(pages)
