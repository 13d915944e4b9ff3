"""Compress and measure one candidate: the unit of work of every search and experiment.

``evaluate_candidate`` starts from a pristine copy of the base model, applies the recipe's steps,
deploys the result into the recipe's runtime (PyTorch eager as it is; llama.cpp as a GGUF file in a
temporary folder), and measures it *there*: size of the deployed artefact, latency, perplexity,
accuracy (when tasks are configured), peak memory and energy per phase. This is the one place that
builds a candidate's measurement for ``run``, ``evaluate`` and the benchmarks.
If compression fails, or a measurement raises, the result is ``status="failed"`` with the error and
the phase it happened in; energy already spent is still reported (it was spent), but no metric is.

Example:
    >>> base = load_model("smollm2-135m")                          # doctest: +SKIP
    >>> result = evaluate_candidate(base, preset("nf4"), MeasureConfig(), meter)  # doctest: +SKIP
    >>> result.metrics.size.serialized_bytes                       # doctest: +SKIP
"""

from __future__ import annotations

import gc
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentic_compression.carbon.meter import EnergyMeter
from agentic_compression.compression import CompressionContext, compress
from agentic_compression.compression.calibration import CalibrationSource
from agentic_compression.compression.recipe import Recipe
from agentic_compression.core.metrics import (
    CandidateMetrics,
    CandidateResult,
    DeploymentRecord,
    EnergyReading,
    InferenceEnergy,
    LatencyStats,
    StepReport,
)
from agentic_compression.core.provenance import now, provenance
from agentic_compression.errors import UserInputError
from agentic_compression.evaluation.footprint import peak_memory
from agentic_compression.evaluation.latency import LatencyConfig, timed_latency, warm_up
from agentic_compression.evaluation.perplexity import PerplexityConfig, perplexity
from agentic_compression.models.loading import LoadedModel
from agentic_compression.redaction import scrub
from agentic_compression.runtimes import Deployment, Runtime, runtime_for

if TYPE_CHECKING:
    from agentic_compression.evaluation.accuracy import AccuracyConfig

#: Called with a short description before each phase (the CLI shows it as progress).
Progress = Callable[[str], None]
#: Called with each phase's energy reading as soon as the phase ends (the search stores it, so
#: the cost of work a kill throws away is still counted on resume).
EnergySink = Callable[[EnergyReading], None]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MeasureConfig:
    """What to measure for each candidate. ``None`` skips a measurement."""

    latency: LatencyConfig | None = field(default_factory=LatencyConfig)
    perplexity: PerplexityConfig | None = field(default_factory=PerplexityConfig)
    accuracy: AccuracyConfig | None = None
    calibration: CalibrationSource = field(default_factory=CalibrationSource)
    seed: int = 0


def build_measure_config(
    *,
    tasks: str | None,
    limit: int | None = None,
    data_dir: Path | None = None,
    allow_code_execution: bool = False,
    calibration_file: Path | None = None,
    latency: LatencyConfig | None = None,
    perplexity: PerplexityConfig | None = None,
    seed: int = 0,
) -> MeasureConfig:
    """The one place ``run`` and ``evaluate`` turn their options into a :class:`MeasureConfig`,
    checking every input (tasks, their data, the calibration file) before any model work."""
    from agentic_compression.evaluation.accuracy import AccuracyConfig, plan_evaluation

    if calibration_file is not None and not calibration_file.is_file():
        raise UserInputError(
            f"calibration file {str(calibration_file)!r} does not exist; check the path"
        )
    accuracy = None
    if tasks:
        accuracy = AccuracyConfig.from_cli(
            tasks, limit=limit, data_dir=data_dir, seed=seed,
            allow_code_execution=allow_code_execution,
        )  # fmt: skip
        plan_evaluation(accuracy)  # every task's data (or the hub) is there: before the model
    return MeasureConfig(
        latency=latency if latency is not None else LatencyConfig(),
        perplexity=perplexity if perplexity is not None else PerplexityConfig(),
        accuracy=accuracy,
        calibration=CalibrationSource(calibration_file),
        seed=seed,
    )


def candidate_id(model_hash: str, recipe: Recipe) -> str:
    return f"{model_hash[:8]}-{recipe.hash}"


def evaluate_candidate(
    base: LoadedModel,
    recipe: Recipe,
    config: MeasureConfig,
    meter: EnergyMeter,
    progress: Progress = lambda _: None,
    on_deployed: Callable[[Runtime, Deployment], None] | None = None,
    on_energy: EnergySink | None = None,
) -> CandidateResult:
    """Compress a fresh copy of ``base`` with ``recipe`` and measure it (see the module docstring).

    ``on_deployed(runtime, deployment)`` is called after the measurements, while the artefact
    still exists (``export`` writes it out from there). ``on_energy(reading)`` is called as each
    metered phase ends.
    """
    import torch

    started_at = now()
    energy: list[EnergyReading] = []
    context = CompressionContext(
        base.tokenizer, config.calibration, config.seed, teacher=base.model
    )
    steps: tuple[StepReport, ...] = ()
    phase = "compression"

    def failed(error: BaseException) -> CandidateResult:
        return _result(base, recipe, config, meter, context, started_at, steps, energy,
                       status="failed", error=scrub(f"{type(error).__name__}: {error}"), phase=phase)  # fmt: skip

    def run_phase(name: str, work: Callable[[], Any]) -> Any:
        """Run ``work`` as an energy-metered phase; its reading is kept even if it raises."""
        nonlocal phase
        phase = name
        box = None
        try:
            with meter.phase(name) as box:
                return work()
        finally:
            if box is not None and box.reading is not None:
                energy.append(box.reading)
                if on_energy is not None:
                    on_energy(box.reading)

    model = base.fresh_copy()
    workdir = None
    try:
        progress(f"compressing: {recipe.label}")
        for phase_name, segment in recipe.segments():  # training steps are metered as training

            def apply(segment: Recipe = segment) -> tuple[StepReport, ...]:
                return compress(model, segment, context)

            steps += run_phase(phase_name, apply)
        gc.collect()
        runtime = runtime_for(recipe.runtime)
        workdir = Path(tempfile.mkdtemp(prefix="agentic-artefact-"))
        folder = workdir
        if recipe.runtime.is_default:  # PyTorch eager serves the model as it is: size it now
            progress("measuring size and sparsity")
            deployment = run_phase(
                "size", lambda: runtime.deploy(model, base, recipe.runtime, context, folder)
            )
        else:
            progress(f"exporting to {recipe.runtime.label}")
            deployment = run_phase(
                "export", lambda: runtime.deploy(model, base, recipe.runtime, context, folder)
            )
            model = None  # the runtime holds its own copy of the weights now
            gc.collect()
        with deployment:
            metrics = _measure(deployment, recipe, base, config, run_phase, energy, progress)
            if on_deployed is not None:
                on_deployed(runtime, deployment)
        phase = "measured"
    except UserInputError:
        raise  # a mistake in what the user asked for: stop, don't record a failed trial
    except Exception as error:
        # Any failure of a candidate is recorded as that candidate's failure (KeyboardInterrupt
        # and SystemExit still stop the run); the traceback goes to the run's log.
        logger.info("candidate %s failed in %s", recipe.label, phase, exc_info=True)
        return failed(error)
    finally:
        model = None
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return _result(base, recipe, config, meter, context, started_at, steps, energy,
                   status="ok", metrics=metrics)  # fmt: skip


def _measure(
    deployment: Deployment,
    recipe: Recipe,
    base: LoadedModel,
    config: MeasureConfig,
    run_phase: Callable[[str, Callable[[], Any]], Any],
    energy: list[EnergyReading],
    progress: Progress,
) -> CandidateMetrics:
    """Latency, perplexity, accuracy, peak memory and size of a deployed candidate."""
    latency = ppl = inference_energy = None
    accuracy: tuple[Any, ...] = ()
    with peak_memory(deployment.device) as peak:
        if config.latency is not None:
            progress("measuring prefill and decode latency")
            lat_config = config.latency
            prompt = run_phase("latency-warmup", lambda: warm_up(deployment, lat_config))
            latency = run_phase("latency", lambda: timed_latency(deployment, lat_config, prompt))
            inference_energy = _per_token(energy[-1], latency)
        if config.perplexity is not None:
            progress("measuring perplexity on WikiText-2 test")
            ppl_config = config.perplexity
            ppl = run_phase("perplexity", lambda: perplexity(deployment, ppl_config))
        if config.accuracy is not None:
            from agentic_compression.evaluation.accuracy import evaluate_accuracy

            progress("evaluating accuracy with lm-eval")
            acc_config = config.accuracy
            key = f"{base.model_hash}:{recipe.hash}"
            accuracy = run_phase(
                "accuracy",
                lambda: evaluate_accuracy(deployment, None, acc_config, cache_key=key),
            )
    # Size was measured at deployment, right after compression (the torch runtime writes the
    # state dict and syncs it to disk then; other runtimes count their exported files).
    info = deployment.info
    return CandidateMetrics(
        size=deployment.size_stats(),
        deployment=DeploymentRecord(
            runtime=info.runtime,
            format=info.format,
            settings=recipe.runtime.params(),
            tensor_types=dict(info.tensor_types),
            artefact_sha256=info.sha256,
            threads=info.threads,
            notes=info.notes,
        ),
        latency=latency,
        memory=peak.stats,
        perplexity=ppl,
        accuracy=accuracy,
        inference_energy=inference_energy,
    )


def _per_token(reading: EnergyReading, latency: LatencyStats) -> InferenceEnergy:
    """Energy per generated token from the metered timed generations alone (no warm-up): each of
    the ``repeats`` generations prefills the prompt and produces ``new_tokens + 1`` tokens."""
    if reading.phase != "latency":
        raise ValueError(f"per-token energy needs the timed-latency reading, got {reading.phase!r}")
    attempts = latency.remeasured + 1  # a disturbed measurement is taken again, metered too
    tokens = attempts * latency.repeats * (latency.new_tokens + 1)
    per_token = reading.energy_kwh / tokens
    return InferenceEnergy(
        generated_tokens=tokens,
        energy_kwh_per_token=per_token,
        co2_kg_per_1k_tokens=reading.co2_kg / tokens * 1000,
        label=reading.label,
        meter=(
            f"{reading.meter}; energy of the {attempts * latency.repeats} timed generations only "
            f"(each a "
            f"{latency.prompt_tokens}-token prefill + {latency.new_tokens + 1} generated tokens; "
            "warm-up excluded) / generated tokens"
        ),
    )


def failed_result(
    base: LoadedModel, recipe: Recipe, config: MeasureConfig, meter: EnergyMeter, error: str
) -> CandidateResult:
    """A failed result for a candidate that could not be measured at all (its worker died)."""
    context = CompressionContext(base.tokenizer, config.calibration, config.seed)
    return _result(base, recipe, config, meter, context, now(), (), [], status="failed",
                   error=error, phase="worker")  # fmt: skip


def _result(
    base: LoadedModel,
    recipe: Recipe,
    config: MeasureConfig,
    meter: EnergyMeter,
    context: CompressionContext,
    started_at: str,
    steps: tuple[StepReport, ...],
    energy: list[EnergyReading],
    *,
    status: str,
    metrics: CandidateMetrics | None = None,
    error: str | None = None,
    phase: str | None = None,
) -> CandidateResult:
    return CandidateResult(
        candidate_id=candidate_id(base.model_hash, recipe),
        model=base.spec,
        recipe=recipe.to_dict(),
        recipe_hash=recipe.hash,
        status="ok" if status == "ok" else "failed",
        error=error,
        failed_phase=phase if status != "ok" else None,
        steps=steps,
        metrics=metrics,
        energy=tuple(energy),
        provenance=provenance(
            seed=config.seed,
            model=f"{base.spec} ({base.source})",
            model_hash=base.model_hash,
            recipe_hash=recipe.hash,
            calibration="; ".join(context.calibration_used) or None,
            meter=meter.name,
            intensity_source=meter.intensity_source,
            started_at=started_at,
        ),
    )
