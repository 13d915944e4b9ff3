"""What every RQ shares: the options, the measurement log, the planners, recipes of the older
``(bits, sparsity)`` vocabulary in each runtime, and the provenance written into every JSON.

Example:
    >>> grid_recipe(8, 0.3, "llamacpp").label
    'wanda-30+gguf-q8_0'
    >>> grid_recipe(16, 0.0, "onnxruntime") is None   # ONNX Runtime GenAI serves int8/int4 here
    True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agentic_compression.compression.recipe import Recipe
from agentic_compression.core.provenance import git_revision, machine_summary, now
from agentic_compression.errors import UserInputError
from agentic_compression.experiments.measurements import Measured, MeasurementLog
from agentic_compression.planning.base import Planner
from agentic_compression.planning.space import (
    BITS_TO_QUANTIZATION,
    SearchSpace,
    SpacePoint,
)
from agentic_compression.workflow.evaluator import CandidateEvaluator, Evaluator

#: The older codebase's bit widths in each runtime: the runtime's own format of that width.
BITS_BY_RUNTIME: Mapping[str, Mapping[int, str]] = {
    "torch": BITS_TO_QUANTIZATION,
    "llamacpp": {32: "gguf-f32", 16: "gguf-f16", 8: "gguf-q8_0", 4: "gguf-q4_0"},
    "onnxruntime": {8: "onnx-int8", 4: "onnx-int4"},
    "vllm": {16: "vllm-bf16", 8: "vllm-w8a8", 4: "vllm-w4a16"},
}


def grid_recipe(bits: int, sparsity: float, runtime: str = "torch") -> Recipe | None:
    """``(bits, sparsity)`` served by ``runtime`` (sparsity by Wanda; 0: no pruning), or None where
    the runtime has no format of that width."""
    quant = BITS_BY_RUNTIME.get(runtime, {}).get(bits)
    if quant is None:
        return None
    sparsity = round(float(sparsity), 2)
    point = SpacePoint("wanda" if sparsity > 0 else "none", sparsity, quant)
    levels = (sparsity,) if sparsity > 0 else (0.5,)
    space = SearchSpace(pruning=("none", "wanda"), sparsity_levels=levels, quantizations=(quant,))
    return space.to_recipe(point)


def baseline_recipe() -> Recipe:
    """The uncompressed model as published, in PyTorch at fp32: what savings are counted against."""
    recipe = grid_recipe(32, 0.0, "torch")
    assert recipe is not None
    return recipe


@dataclass(frozen=True)
class ExperimentOptions:
    """What an RQ run was asked for (the CLI options), stored in every JSON."""

    model: str = "smollm2-135m"
    runtimes: tuple[str, ...] = ("torch",)
    seeds: tuple[int, ...] = (0, 1, 2)
    quick: bool = False
    #: Trials of each planner-driven search (None: 8 with --quick, 16 otherwise).
    trials: int | None = None
    #: Minimum accuracy (a fraction); None: ``retention`` x the uncompressed model's accuracy.
    accuracy_threshold: float | None = None
    retention: float = 0.95
    planner: str = "offline"
    requests_per_day: int = 10_000
    tokens_per_request: int = 256

    @property
    def search_trials(self) -> int:
        return self.trials if self.trials is not None else (8 if self.quick else 16)

    @property
    def fidelity(self) -> str:
        return "screen" if self.quick else "full"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "runtimes": list(self.runtimes),
            "seeds": list(self.seeds),
            "quick": self.quick,
            "fidelity": self.fidelity,
            "search_trials": self.search_trials,
            "accuracy_threshold": self.accuracy_threshold,
            "retention": self.retention,
            "planner": self.planner,
            "requests_per_day": self.requests_per_day,
            "tokens_per_request": self.tokens_per_request,
        }


PlannerFactory = Callable[[int, SearchSpace], Planner]


@dataclass
class Experiment:
    """One experiment folder's shared state: options, the measurement log, the planner factory."""

    options: ExperimentOptions
    log: MeasurementLog
    make_planner: PlannerFactory
    #: The joint (recipe x runtime) space of ``options.runtimes`` on this machine.
    space: SearchSpace
    provenance: dict[str, Any] = field(default_factory=dict)

    def measured_baseline(self) -> Measured:
        """The uncompressed baseline's measurement; a one-line error when it failed."""
        base = self.log.measure(baseline_recipe())
        if not base.ok:
            raise UserInputError(
                f"the uncompressed baseline (fp32, PyTorch) failed to measure ({base.error}); "
                "the RQs compare against it: check the model, or pass --accuracy-threshold for RQ1/RQ4"
            )
        return base

    def threshold(self) -> tuple[float, str]:
        """The accuracy threshold and how it was set (measuring the baseline if needed)."""
        if self.options.accuracy_threshold is not None:
            return self.options.accuracy_threshold, "given (--accuracy-threshold)"
        base = self.measured_baseline()
        value = round(self.options.retention * base.objectives["accuracy"], 6)
        return value, (
            f"{self.options.retention:g} x the uncompressed model's measured accuracy "
            f"({base.objectives['accuracy']:.4f})"
        )


def evaluation_description(evaluator: Evaluator) -> dict[str, Any]:
    """What decides the measurements: the evaluator's config hash, and for the product's evaluator
    the model hash, each accuracy task's data fingerprint, perplexity and latency settings."""
    out: dict[str, Any] = {"config_hash": evaluator.config_hash}
    if isinstance(evaluator, CandidateEvaluator):
        config = evaluator.config
        out["model_hash"] = evaluator.base.model_hash
        out["model_notes"] = list(evaluator.base.notes)
        out["meter"] = type(evaluator.meter).__name__
        out["country_iso_code"] = evaluator.meter.country_iso_code
        if config.accuracy is not None:
            from agentic_compression.evaluation.accuracy import plan_evaluation

            out["accuracy_tasks"] = [
                t.cache_fields(config.accuracy) for t in plan_evaluation(config.accuracy)
            ]
        out["perplexity"] = config.perplexity.model_dump() if config.perplexity else None
        out["latency"] = config.latency.model_dump() if config.latency else None
        out["calibration"] = config.calibration.description
    return out


def experiment_provenance(evaluator: Evaluator, options: ExperimentOptions) -> dict[str, Any]:
    """Versions, machine, seeds and data fingerprints, for every RQ JSON."""
    return {
        "started_at": now(),
        "git_revision": git_revision(),
        "machine": machine_summary(),
        "seeds": list(options.seeds),
        "evaluation": evaluation_description(evaluator),
    }
