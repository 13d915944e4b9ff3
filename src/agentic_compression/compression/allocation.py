"""Bits where they matter: per-matrix precision under a size budget, from measured sensitivity.

The inputs are, for every weight matrix (a *unit*), its options: a number format, the bytes it is
stored in, and the damage it does (:mod:`.sensitivity` measures it on calibration text). The
allocation is the classic marginal-gain knapsack of mixed-precision allocators (HAWQ-V3, llama.cpp's
own ``--tensor-type`` tuning done by hand): every unit starts at its smallest option, then the upgrade
that saves the most damage per extra byte and still fits the budget is taken, until none fits
(upgrades that save nothing measurable come last but are still taken: bits left over help nobody).

Example:
    >>> units = {
    ...     "a": [Option("q4", 50, 9.0), Option("q8", 100, 1.0)],
    ...     "b": [Option("q4", 50, 2.0), Option("q8", 100, 1.5)],
    ... }
    >>> allocate(units, 150)
    {'a': 'q8', 'b': 'q4'}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from agentic_compression.errors import UserInputError


@dataclass(frozen=True)
class Option:
    """One way to store a unit: ``kind`` (a format name), its bytes and its estimated damage."""

    kind: str
    nbytes: int
    damage: float


def allocate(units: Mapping[str, Sequence[Option]], budget_bytes: int) -> dict[str, str]:
    """The kind of every unit: the greedy marginal-gain allocation within ``budget_bytes``."""
    chosen = {
        name: min(options, key=lambda o: (o.nbytes, o.damage)) for name, options in units.items()
    }
    used = sum(option.nbytes for option in chosen.values())
    if used > budget_bytes:
        raise UserInputError(
            f"the size budget ({budget_bytes:,} bytes) is below the smallest allocation "
            f"({used:,} bytes, every matrix at its lowest type): raise the budget's bits"
        )
    while True:
        best: tuple[float, str, Option] | None = None
        for name, current in chosen.items():
            for option in units[name]:
                extra = option.nbytes - current.nbytes
                saved = current.damage - option.damage
                if extra <= 0 or saved < 0 or used + extra > budget_bytes:
                    continue
                gain = saved / extra
                if best is None or gain > best[0]:
                    best = (gain, name, option)
        if best is None:
            return {name: option.kind for name, option in chosen.items()}
        _, name, option = best
        used += option.nbytes - chosen[name].nbytes
        chosen[name] = option
