"""``compress(model, recipe, context)``: apply a recipe's steps in order, in place.

Each step is timed and reported. A step that cannot run on this hardware raises
:class:`MethodUnavailableError`; any other exception becomes :class:`CompressionFailedError` naming the
step. Either way the caller records the candidate as failed: a failed compression never falls back to
evaluating the base model under the candidate's name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from agentic_compression.compression.calibration import CalibrationSource
from agentic_compression.compression.layers import conv1d_to_linear
from agentic_compression.compression.recipe import Recipe
from agentic_compression.compression.registry import method_spec
from agentic_compression.core.metrics import StepReport
from agentic_compression.errors import (
    CompressionFailedError,
    MethodUnavailableError,
    UserInputError,
)


@dataclass
class CompressionContext:
    """What methods need besides the model: tokenizer, calibration text, seed, and the uncompressed
    base model as a teacher for distillation (None: distillation is refused).

    ``calibration_used`` collects a description of every calibration batch drawn, for provenance.
    """

    tokenizer: Any
    calibration: CalibrationSource = field(default_factory=CalibrationSource)
    seed: int = 0
    calibration_used: list[str] = field(default_factory=list)
    teacher: Any = None


def compress(model: Any, recipe: Recipe, context: CompressionContext) -> tuple[StepReport, ...]:
    """Apply ``recipe`` to ``model`` in place and return one report per step."""
    import torch

    if not recipe.steps:
        return ()
    torch.manual_seed(context.seed)
    conv1d_to_linear(model)
    reports = []
    for index, step in enumerate(recipe.steps, start=1):
        handler = method_spec(step.method).handler
        started = time.perf_counter()
        try:
            with torch.no_grad():
                summary = handler(model, step, context)
        except (MethodUnavailableError, UserInputError):
            raise
        except Exception as error:  # a library error inside a step: record it, name the step
            raise CompressionFailedError(
                f"step {index} {step.describe()} failed: {type(error).__name__}: {error}"
            ) from error
        reports.append(
            StepReport(
                method=step.method,
                params=step.params(),
                summary=summary,
                seconds=round(time.perf_counter() - started, 4),
            )
        )
    return tuple(reports)
