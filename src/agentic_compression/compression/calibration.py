"""Real calibration text for activation-aware methods, never the text candidates are evaluated on.

The default source is the first 2000 rows of GSM8K's *train* split shipped with the package (perplexity
is measured on WikiText-2 *test*; no benchmark evaluates on GSM8K train). A user file (plain text, or
JSONL with a ``text`` field) replaces it with ``--calibration-file``.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from agentic_compression.errors import UserInputError

DEFAULT_CALIBRATION = "gsm8k-train-first2000"


@dataclass(frozen=True)
class CalibrationSource:
    """Where calibration text comes from; ``None`` path means the shipped default."""

    path: Path | None = None

    @property
    def description(self) -> str:
        if self.path is None:
            return f"{DEFAULT_CALIBRATION} (GSM8K train, shipped with the package)"
        return str(self.path)

    def texts(self) -> list[str]:
        if self.path is None:
            package = resources.files("agentic_compression.data")
            raw = (package / "gsm8k-train-first2000.jsonl.gz").read_bytes()
            rows = [json.loads(line) for line in gzip.decompress(raw).decode().splitlines()]
            return [f"Question: {r['question']}\nAnswer: {r['answer']}" for r in rows]
        if not self.path.is_file():
            raise UserInputError(
                f"calibration file {str(self.path)!r} does not exist; check the path"
            )
        text = self.path.read_text(encoding="utf-8")
        if self.path.suffix == ".jsonl":
            try:
                return [json.loads(line)["text"] for line in text.splitlines() if line.strip()]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise UserInputError(
                    f"calibration file {str(self.path)!r}: every JSONL line needs a 'text' field"
                ) from None
        return [p for p in text.split("\n\n") if p.strip()]


def calibration_batch(tokenizer: Any, source: CalibrationSource, samples: int, seq_len: int) -> Any:
    """``samples`` sequences of exactly ``seq_len`` tokens, cut from the concatenated text in order.

    Deterministic (no sampling), so the same recipe calibrates on the same tokens every time.
    """
    import torch

    ids: list[int] = []
    needed = samples * seq_len
    separator = tokenizer.eos_token_id
    for text in source.texts():
        ids.extend(tokenizer(text, add_special_tokens=False).input_ids)
        if separator is not None:
            ids.append(separator)
        if len(ids) >= needed:
            break
    if len(ids) < needed:
        raise UserInputError(
            f"calibration text {source.description} has {len(ids)} tokens, "
            f"{needed} needed ({samples} x {seq_len}); use more text or fewer samples"
        )
    return torch.tensor(ids[:needed], dtype=torch.long).view(samples, seq_len)


def calibration_capacity(tokenizer: Any, source: CalibrationSource, seq_len: int) -> int:
    """How many sequences of ``seq_len`` tokens the whole of ``source`` holds (as
    :func:`calibration_batch` cuts them)."""
    separator = 0 if tokenizer.eos_token_id is None else 1
    total = sum(
        len(tokenizer(text, add_special_tokens=False).input_ids) + separator
        for text in source.texts()
    )
    return total // seq_len


def calibration_tokens(model: Any, context: Any, samples: int, seq_len: int) -> Any:
    """The calibration batch of a compression step on ``model``'s device, recorded for provenance
    in ``context.calibration_used`` (``context``: a ``CompressionContext``)."""
    device = next(model.parameters()).device
    tokens = calibration_batch(context.tokenizer, context.calibration, samples, seq_len)
    context.calibration_used.append(
        f"{context.calibration.description}: {samples} x {seq_len} tokens"
    )
    return tokens.to(device)
