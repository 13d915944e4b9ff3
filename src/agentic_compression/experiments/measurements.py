"""Measured candidates of an experiment folder, each measured once and kept in ``measurements.jsonl``.

A :class:`Measured` is what the experiments need of a
:class:`~agentic_compression.core.metrics.CandidateResult`: the objective values, their measured
noise, the fidelity, the cost of the evaluation itself (seconds, energy, CO2 of every phase) and the
mean power over the decode loop. A failed candidate is recorded as failed (with its error and the
energy it spent) and never gets objective values.

:class:`MeasurementLog` answers ``measure(recipe)`` from the log when that recipe was measured in
this folder under the same evaluation settings (``Evaluator.config_hash``) and fidelity, and
otherwise evaluates it and appends the line at once (a killed run keeps every finished
measurement).

Example:
    >>> log = MeasurementLog(Path("out/measurements.jsonl"), evaluator, "screen")  # doctest: +SKIP
    >>> log.measure(preset("int8")).objectives["accuracy"]                        # doctest: +SKIP
    0.52
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agentic_compression.compression.recipe import Recipe
from agentic_compression.core.metrics import CandidateResult
from agentic_compression.core.objectives import (
    MissingObjectiveError,
    objective_noise,
    objective_values,
)
from agentic_compression.evaluation.screening import Fidelity
from agentic_compression.workflow.evaluator import Evaluator

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Measured:
    """One measured (recipe, runtime) candidate, as the experiments use it."""

    label: str
    recipe: dict[str, Any]
    recipe_hash: str
    runtime: str
    status: str
    fidelity: str
    #: Wall seconds, energy (kWh) and CO2 (kg) of the evaluation: compression, export, measuring.
    seconds: float
    energy_kwh: float
    co2_kg: float
    objectives: dict[str, float] = field(default_factory=dict)
    noise: dict[str, float] = field(default_factory=dict)
    #: Mean power (W) over the timed generations (prefill and decode of every latency repeat):
    #: the latency phase's metered energy / its duration.
    power_w: float | None = None
    #: "measured" (a power sensor) or "estimated" (CodeCarbon's TDP model): the meter's own label.
    energy_label: str | None = None
    error: str | None = None
    #: The latency measurement stayed disturbed by other load after its re-measurements
    #: (``evaluation.latency``): its timed objectives are suspect; kept and flagged.
    disturbed: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "ok" and bool(self.objectives)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Measured:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    @classmethod
    def of(cls, result: CandidateResult, fidelity: str, seconds: float) -> Measured:
        recipe = Recipe.from_dict(result.recipe)
        common: dict[str, Any] = {
            "label": recipe.label,
            "recipe": result.recipe,
            "recipe_hash": result.recipe_hash,
            "runtime": recipe.runtime.name,
            "fidelity": fidelity,
            "seconds": round(seconds, 3),
            "energy_kwh": sum(r.energy_kwh for r in result.energy),
            "co2_kg": sum(r.co2_kg for r in result.energy),
        }
        if result.status != "ok" or result.metrics is None:
            return cls(status="failed", error=result.error or "failed", **common)
        metrics = result.metrics
        try:
            objectives = objective_values(result)
        except MissingObjectiveError as error:  # measured, but not everything the RQs compare
            return cls(status="failed", error=f"missing objective: {error}", **common)
        timed = [r for r in result.energy if r.phase == "latency" and r.duration_s > 0]
        power = (
            sum(r.energy_kwh for r in timed) * 3.6e6 / sum(r.duration_s for r in timed)
            if timed
            else None
        )
        energy = metrics.inference_energy
        return cls(
            status="ok",
            disturbed=bool(metrics.latency is not None and metrics.latency.disturbed),
            objectives=objectives,
            noise=objective_noise(result),
            power_w=power,
            energy_label=energy.label if energy is not None else None,
            **common,
        )


Listener = Callable[[Measured, bool], None]


class MeasurementLog:
    """Measures candidates once per folder; ``on_result(measured, reused)`` hears of each answer."""

    def __init__(
        self,
        path: Path,
        evaluator: Evaluator,
        fidelity: Fidelity = "full",
        on_result: Listener | None = None,
        on_progress: Callable[[str], None] | None = None,
    ) -> None:
        self.path = path
        self.evaluator = evaluator
        self.fidelity = fidelity
        self.on_result = on_result
        self.on_progress = on_progress or (lambda text: None)
        self._known: dict[str, Measured] = {}
        self.measured_here = 0
        #: Recipe hashes asked for since the last :meth:`start_tally` (measured or reused).
        self.used: set[str] = set()
        if path.exists():
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                try:
                    row = json.loads(line)
                    same = row["config_hash"] == evaluator.config_hash
                    if same and row["fidelity"] == fidelity and row["status"] == "ok":
                        # Failures are measured again: the cause may have been transient.
                        self._known[row["recipe_hash"]] = Measured.from_dict(row)
                except (ValueError, KeyError, TypeError) as error:
                    logger.warning("%s line %d skipped (%s)", path, number, error)

    @property
    def known(self) -> Mapping[str, Measured]:
        return self._known

    def start_tally(self) -> None:
        self.used = set()

    def tally(self) -> dict[str, float]:
        """What the candidates asked for since :meth:`start_tally` cost to measure (whenever
        they were measured): count, evaluation seconds and energy."""
        used = [self._known[h] for h in self.used if h in self._known]
        return {
            "candidates": len(used),
            "evaluation_seconds": round(sum(m.seconds for m in used), 1),
            "evaluation_energy_kwh": sum(m.energy_kwh for m in used),
        }

    def measure(self, recipe: Recipe) -> Measured:
        """The candidate's measurement: from this folder's log, or evaluated now and logged."""
        self.used.add(recipe.hash)
        if recipe.hash in self._known:
            measured = self._known[recipe.hash]
            if self.on_result is not None:
                self.on_result(measured, True)
            return measured
        label = recipe.label
        self.on_progress(f"measuring {label}")
        started = time.perf_counter()
        result = self.evaluator.evaluate(
            recipe, lambda text: self.on_progress(f"{label}: {text}"), fidelity=self.fidelity
        )
        measured = Measured.of(result, self.fidelity, time.perf_counter() - started)
        self._append(measured)
        self._known[recipe.hash] = measured
        self.measured_here += 1
        if self.on_result is not None:
            self.on_result(measured, False)
        return measured

    def _append(self, measured: Measured) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        row = {"config_hash": self.evaluator.config_hash, **measured.to_dict()}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
