"""What the workflow's evaluate step calls: an :class:`Evaluator` turns a recipe into a measured result.

:class:`CandidateEvaluator` is the product's implementation: it holds the run context that must not
enter the graph state (the loaded base model, the energy meter, the measurement settings) and calls
:func:`~agentic_compression.evaluation.candidate.evaluate_candidate`. Its ``config_hash`` identifies
the evaluation settings (model hash included); every trial records it as provenance, and a resumed
run refuses to continue under different settings.

Example:
    >>> base = load_model("smollm2-135m")                            # doctest: +SKIP
    >>> evaluator = CandidateEvaluator(base, MeasureConfig(), CodeCarbonMeter("FRA"))  # doctest: +SKIP
    >>> evaluator.evaluate(preset("nf4"), print).status             # doctest: +SKIP
    'ok'
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

from agentic_compression.carbon.meter import EnergyMeter, PhaseBox
from agentic_compression.carbon.scheduling import CarbonAwareScheduler
from agentic_compression.compression.recipe import Recipe
from agentic_compression.core.metrics import CandidateResult
from agentic_compression.evaluation.candidate import (
    EnergySink,
    MeasureConfig,
    Progress,
    evaluate_candidate,
    failed_result,
)
from agentic_compression.evaluation.screening import Fidelity, screening_config
from agentic_compression.models.loading import LoadedModel


class Evaluator(ABC):
    """Measures candidates for the workflow."""

    @property
    @abstractmethod
    def config_hash(self) -> str:
        """A stable hash of everything that decides the measurements (model, settings, grid)."""

    @abstractmethod
    def evaluate(
        self,
        recipe: Recipe,
        progress: Progress,
        on_energy: EnergySink | None = None,
        fidelity: Fidelity = "full",
    ) -> CandidateResult:
        """Compress and measure one candidate; a failure is a ``status="failed"`` result.
        ``on_energy`` receives each phase's energy reading as soon as the phase ends;
        ``fidelity`` "screen" measures with fewer examples and repeats
        (:func:`~agentic_compression.evaluation.screening.screening_config`)."""

    def failure(self, recipe: Recipe, error: str) -> CandidateResult:
        """A failed result for a candidate that could not be measured at all (its worker died);
        evaluators whose candidates run on remote workers implement it."""
        raise NotImplementedError(f"{type(self).__name__} cannot record {error}")

    @contextlib.contextmanager
    def metered(self, phase: str) -> Iterator[PhaseBox]:
        """Meter other work of the search (planner calls); the default measures nothing."""
        yield PhaseBox()


def evaluation_config_hash(model_hash: str, config: MeasureConfig, country_iso_code: str) -> str:
    """SHA-256 (16 hex) over the base model hash and every measurement setting, including the
    fingerprint of each accuracy task's data files as resolved now.

    >>> evaluation_config_hash("abc", MeasureConfig(), "FRA") == evaluation_config_hash(
    ...     "abc", MeasureConfig(), "FRA")
    True
    """
    accuracy: dict[str, Any] | None = None
    if config.accuracy is not None:
        from agentic_compression.evaluation.accuracy import plan_evaluation

        accuracy = config.accuracy.to_dict()
        accuracy.pop("cache_path", None)  # where results are cached does not change them
        # The data as resolved (the folder from --data-dir or the environment) and each task's
        # file fingerprint: a resume on other data must not score into the same front.
        accuracy.pop("data_dir", None)
        accuracy["tasks_resolved"] = [
            task.cache_fields(config.accuracy) for task in plan_evaluation(config.accuracy)
        ]
    payload = {
        "model_hash": model_hash,
        "latency": config.latency.model_dump() if config.latency else None,
        "perplexity": config.perplexity.model_dump() if config.perplexity else None,
        "accuracy": accuracy,
        "calibration": config.calibration.description,
        "seed": config.seed,
        "country_iso_code": country_iso_code,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class CandidateEvaluator(Evaluator):
    """Evaluates recipes on a loaded base model with one meter and one measurement config."""

    def __init__(
        self,
        base: LoadedModel,
        config: MeasureConfig,
        meter: EnergyMeter,
        scheduler: CarbonAwareScheduler | None = None,
    ) -> None:
        self.base = base
        self.config = config
        self.meter = meter
        self.scheduler = scheduler
        # Screening settings derive from the full ones, so one hash covers both.
        self._hash = evaluation_config_hash(base.model_hash, config, meter.country_iso_code)

    @property
    def config_hash(self) -> str:
        return self._hash

    def evaluate(
        self,
        recipe: Recipe,
        progress: Progress,
        on_energy: EnergySink | None = None,
        fidelity: Fidelity = "full",
    ) -> CandidateResult:
        if self.scheduler is not None:
            progress("carbon-aware scheduling: checking the forecast")
            progress(f"carbon-aware scheduling: {self.scheduler.wait_for_clean_window().note}")
        config = self.config if fidelity == "full" else screening_config(self.config)
        return evaluate_candidate(
            self.base, recipe, config, self.meter, progress, on_energy=on_energy
        )

    def failure(self, recipe: Recipe, error: str) -> CandidateResult:
        return failed_result(self.base, recipe, self.config, self.meter, error)

    @contextlib.contextmanager
    def metered(self, phase: str) -> Iterator[PhaseBox]:
        with self.meter.phase(phase) as box:
            yield box
