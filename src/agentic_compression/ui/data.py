"""What the pages show, read from the results store and the run folders (no Streamlit here).

Example:
    >>> config = UiConfig.from_env()                         # doctest: +SKIP
    >>> [r["run_id"] for r in list_runs(config)]             # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentic_compression.core.objectives import OBJECTIVE_NAMES

#: Objective -> (axis title, factor from the objective's unit to the axis unit).
AXES: dict[str, tuple[str, float]] = {
    "accuracy": ("accuracy", 1.0),
    "latency_ms": ("decode latency (ms/token)", 1.0),
    "memory_bytes": ("size (MB)", 1e-6),
    "energy_kwh_per_1k_tokens": ("energy per 1k tokens (Wh)", 1000.0),
    "co2_kg_per_1k_tokens": ("CO2 per 1k tokens (g)", 1000.0),
}


@dataclass(frozen=True)
class UiConfig:
    runs_dir: Path
    store_url: str
    experiments_dir: Path

    @classmethod
    def from_env(cls) -> UiConfig:
        runs = Path(os.environ.get("AGENTIC_COMPRESSION_UI_RUNS", "runs"))
        store = os.environ.get("AGENTIC_COMPRESSION_UI_STORE") or (
            f"sqlite:///{(runs / 'results.sqlite').resolve()}"
        )
        experiments = Path(os.environ.get("AGENTIC_COMPRESSION_UI_EXPERIMENTS", "experiments"))
        return cls(runs, store, experiments)

    @property
    def jobs_dir(self) -> Path:
        return self.runs_dir / ".ui-jobs"


def _store(config: UiConfig) -> Any:
    from agentic_compression.results.store import make_results_store

    config.runs_dir.mkdir(parents=True, exist_ok=True)
    return make_results_store(config.store_url)


def list_runs(config: UiConfig) -> list[dict[str, Any]]:
    """Every run of the store, newest first, with its live status and trial count."""
    from agentic_compression.workflow.runner import effective_status

    with _store(config) as store:
        out = []
        for run in store.list_runs():
            out.append(
                {
                    "run_id": run.run_id,
                    "model": run.model,
                    "status": effective_status(run),
                    "trials": store.count_trials(run.run_id),
                    "max_trials": run.config.get("max_trials"),
                    "detail": run.stop_reason or run.progress or run.error or "",
                    "updated": run.updated_at,
                    "carbon_budget_kg": run.config.get("carbon_budget_kg"),
                    "pid": run.pid,
                    "host": run.host,
                }
            )
    return sorted(out, key=lambda r: r["updated"], reverse=True)


def run_trials(config: UiConfig, run_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A run's summary and one row per trial: objectives, front membership, runtime, costs,
    per-benchmark accuracy and provenance."""
    from agentic_compression.results.export import frontier_of
    from agentic_compression.workflow.runner import effective_status, settings_of

    with _store(config) as store:
        run = store.get_run(run_id)
        if run is None:
            raise KeyError(run_id)
        trials = store.list_trials(run_id)
    settings = settings_of(run)
    frontier = frontier_of(trials, settings.goal())
    front, feasible = set(frontier.front_ids), set(frontier.feasible_ids)
    rows = []
    for t in trials:
        metrics = t.result.metrics
        rows.append(
            {
                "trial": t.number,
                "label": t.recipe.label,
                "runtime": t.recipe.runtime.name,
                "status": t.status,
                "fidelity": t.provenance.fidelity,
                "feasible": t.candidate_id in feasible,
                "on_front": t.candidate_id in front,
                "chosen": t.candidate_id == frontier.selections.get(settings.select),
                **{name: (t.objectives or {}).get(name) for name in OBJECTIVE_NAMES},
                "evaluation_co2_kg": sum(r.co2_kg for r in t.result.energy),
                "evaluation_energy_kwh": sum(r.energy_kwh for r in t.result.energy),
                "seconds": t.seconds,
                "benchmarks": {
                    f"{m.task} {m.metric}": m.value for m in (metrics.accuracy if metrics else ())
                },
                "error": t.error,
                "recipe": t.recipe.to_dict(),
                "provenance": {
                    "planner": t.provenance.planner,
                    "reasoning": t.provenance.reasoning,
                    "evaluation_config_hash": t.provenance.evaluation_config_hash,
                    **t.result.provenance.model_dump(mode="json"),
                },
            }
        )
    summary = {
        "run_id": run.run_id,
        "model": run.model,
        "status": effective_status(run),
        "progress": run.progress,
        "stop_reason": run.stop_reason,
        "max_trials": settings.max_trials,
        "carbon_budget_kg": settings.carbon_budget_kg,
        "co2_kg": sum(r["evaluation_co2_kg"] for r in rows),
        "hypervolume": frontier.hypervolume,
        "select": settings.select,
    }
    return summary, rows


def experiment_folders(config: UiConfig) -> list[Path]:
    """Experiment output folders (holding rq*.json), newest first."""
    if not config.experiments_dir.is_dir():
        return []
    found = {p.parent for p in config.experiments_dir.glob("*/rq[1-4].json")}
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def machine_now() -> dict[str, float | None]:
    """Machine load right now: CPU %, memory used %, and GPU utilisation/memory/power if NVML
    answers (None otherwise)."""
    import psutil

    out: dict[str, float | None] = {
        "cpu_percent": psutil.cpu_percent(interval=0.2),
        "memory_percent": psutil.virtual_memory().percent,
        "gpu_percent": None,
        "gpu_memory_percent": None,
        "gpu_power_w": None,
    }
    try:
        import pynvml
    except ImportError:
        return out  # no NVML binding: the dashboard shows CPU figures only
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        util = pynvml.nvmlDeviceGetUtilizationRates(handle)
        memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
        out["gpu_percent"] = float(util.gpu)
        out["gpu_memory_percent"] = 100.0 * memory.used / memory.total
        out["gpu_power_w"] = pynvml.nvmlDeviceGetPowerUsage(handle) / 1000.0
    except pynvml.NVMLError:
        pass  # no NVIDIA driver or GPU here: the GPU figures stay None ("no GPU" on the page)
    return out
