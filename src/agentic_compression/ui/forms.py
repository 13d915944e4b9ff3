"""Form values -> CLI arguments, checked as the CLI checks them (no Streamlit here).

Example:
    >>> search_args({"model": "smollm2-135m", "max_trials": 4, "runtimes": ["llamacpp"]})
    ['run', '--model', 'smollm2-135m', '--max-trials', '4', '--runtime', 'llamacpp']
    >>> search_args({"model": "m", "executor": "ray", "workers": 3})[3:]
    ['--executor', 'ray', '--workers', '3', '--gpu-workers', '0']
"""

from __future__ import annotations

from agentic_compression.errors import UserInputError


def search_args(values: dict[str, object]) -> list[str]:
    """The ``agentic-compress run`` arguments of the form's values, checked like the CLI does."""
    model = str(values["model"]).strip()
    if not model:
        raise UserInputError(
            "model: give an alias (smollm2-135m), a folder, a .gguf file or a hub id"
        )
    threshold = values.get("accuracy_threshold")
    if threshold is not None and not 0 <= float(threshold) <= 1:  # type: ignore[arg-type]
        raise UserInputError("accuracy threshold: a fraction between 0 and 1")
    args = ["run", "--model", model]
    flags = {
        "max_trials": "--max-trials", "carbon_budget_kg": "--carbon-budget-kg",
        "time_budget_min": "--time-budget-min", "patience": "--patience", "planner": "--planner",
        "objective": "--objective", "accuracy_threshold": "--accuracy-threshold",
        "max_memory_mb": "--max-memory-mb", "max_latency_ms": "--max-latency-ms",
        "tasks": "--tasks", "limit": "--limit", "country": "--country", "seed": "--seed",
        "select": "--select", "fidelity": "--fidelity", "ppl_windows": "--ppl-windows",
        "latency_repeats": "--latency-repeats", "latency_new_tokens": "--latency-new-tokens",
        "executor": "--executor", "ray_address": "--ray-address", "zone": "--zone",
        "meter": "--meter", "carbon_aware_max_delay_min": "--carbon-aware-max-delay-min",
        "data_dir": "--data-dir", "calibration_file": "--calibration-file",
        "checkpoint_url": "--checkpoint-url",
    }  # fmt: skip
    for key, flag in flags.items():
        value = values.get(key)
        if value is not None and str(value).strip() != "":
            args += [flag, str(value)]
    if values.get("executor") == "ray":  # worker counts mean something only on Ray
        args += ["--workers", str(values.get("workers", 2))]
        args += ["--gpu-workers", str(values.get("gpu_workers", 0))]
    runtimes = values.get("runtimes")
    if runtimes:
        args += ["--runtime", ",".join(runtimes)]  # type: ignore[arg-type]
    return args
