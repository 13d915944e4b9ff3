"""Overhead of the accuracy adapter against a direct ``lm_eval.simple_evaluate`` call, and cache speed.

Same model (the embedded SmolLM2-135M, fp32, in memory), same data (the shared ARC-Easy files), same
task settings (0-shot, ``limit`` examples, batch size 8). The direct arm is what a user would write by
hand from the shared benchmarks README: a task YAML that includes lm-eval's ``arc_easy.yaml`` with the
data source overridden, a ``TaskManager`` over it, ``HFLM(pretrained=model)`` and ``simple_evaluate``.
The adapter arm is ``evaluate_accuracy`` with no cache.

Measurement: after one warm-up of each arm, ``PAIRS`` back-to-back pairs in ABBA order (direct first in
even pairs, adapter first in odd ones). The machine is shared, and its load moves a run's time by 2x
within minutes, so ``wall_time_ratio`` is the median over pairs of adapter / direct wall time (the two
runs of a pair see nearly the same load). ``lm_eval.simple_evaluate`` is wrapped with a timer in both
arms, so each run also splits into time inside lm-eval and time outside it; the adapter's own cost is
its time outside lm-eval (planning, YAML, result conversion), reported as ``outside_lm_eval_s``.

Then the cache: one cold ``evaluate_accuracy`` with a ``cache_key`` (evaluates and stores), and repeated
hits; ``cache_speedup`` = cold wall time / median hit wall time.

Writes ``benchmarks/results/eval_overhead.json`` (keys ``wall_time_ratio`` and ``cache_speedup``, plus
every run's times, the machine and versions). Targets: ratio <= 1.10, speedup >= 20.

Usage (about 5-10 minutes on 2 CPU cores, depending on their load):
    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 .venv/bin/python benchmarks/eval_overhead.py
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

for _flag in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_flag, "1")

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("AGENTIC_COMPRESSION_DATA", REPO.parent / "shared" / "benchmarks"))
RESULT = REPO / "benchmarks" / "results" / "eval_overhead.json"
LIMIT = int(os.environ.get("EVAL_OVERHEAD_LIMIT", "5"))
PAIRS = int(os.environ.get("EVAL_OVERHEAD_PAIRS", "20"))
# One torch thread in both arms: with two threads on two shared cores, a neighbour process stalls
# every parallel region and a run's time swings several-fold; one thread keeps pairs comparable.
THREADS = int(os.environ.get("EVAL_OVERHEAD_THREADS", "1"))
BATCH_SIZE = 8


def _direct_yaml(folder: Path) -> None:
    """The shared README's arc_easy_local.yaml, written by hand (not by the package)."""
    import lm_eval

    tasks = Path(lm_eval.__file__).parent / "tasks"
    (folder / "arc_easy_local.yaml").write_text(
        f"include: {tasks}/arc/arc_easy.yaml\n"
        "task: arc_easy_local\n"
        "tag: [local_benchmarks]\n"
        "dataset_path: json\n"
        "dataset_name: null\n"
        "dataset_kwargs:\n"
        "  data_files:\n"
        f"    train: {DATA}/arc/ARC-Easy-train.jsonl\n"
        f"    validation: {DATA}/arc/ARC-Easy-validation.jsonl\n"
        f"    test: {DATA}/arc/ARC-Easy-test.jsonl\n"
    )


def _timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    import lm_eval
    import torch
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from agentic_compression.core.provenance import machine_summary, now
    from agentic_compression.evaluation.accuracy import AccuracyConfig, TaskSpec, evaluate_accuracy
    from agentic_compression.evaluation.eval_cache import EvaluationCache
    from agentic_compression.models import load_model

    torch.set_num_threads(THREADS)
    loaded = load_model("smollm2-135m")
    model, tokenizer = loaded.model, loaded.tokenizer
    scratch = Path(tempfile.mkdtemp(prefix="eval-overhead-"))
    direct_tasks = scratch / "direct_tasks"
    direct_tasks.mkdir()
    _direct_yaml(direct_tasks)
    config = AccuracyConfig(
        (TaskSpec("arc_easy"),), data_dir=DATA, limit=LIMIT, batch_size=BATCH_SIZE, cache_path=None
    )

    def direct() -> dict[str, float]:
        manager = TaskManager(include_path=str(direct_tasks), include_defaults=False)
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=BATCH_SIZE)
        results = lm_eval.simple_evaluate(
            model=lm, tasks=["arc_easy_local"], limit=LIMIT, task_manager=manager, log_samples=False
        )
        assert results is not None
        row = results["results"]["arc_easy_local"]
        return {"acc": float(row["acc,none"]), "acc_stderr": float(row["acc_stderr,none"])}

    def adapter() -> dict[str, float]:
        (metric,) = evaluate_accuracy(model, tokenizer, config)
        assert metric.stderr is not None
        return {"acc": metric.value, "acc_stderr": metric.stderr}

    # Time spent inside lm-eval, recorded by a wrapper both arms go through.
    inside: list[float] = []
    real_simple_evaluate = lm_eval.simple_evaluate

    def timed_simple_evaluate(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return real_simple_evaluate(*args, **kwargs)
        finally:
            inside.append(time.perf_counter() - start)

    lm_eval.simple_evaluate = timed_simple_evaluate

    load_before = os.getloadavg()
    started = now()
    direct()  # warm-up: dataset build, imports, kernels
    adapter()
    runs: dict[str, list[dict[str, float]]] = {"direct": [], "adapter": []}
    pair_ratios: list[float] = []
    outputs: dict[str, dict[str, float]] = {}
    for pair in range(PAIRS):
        order = [("direct", direct), ("adapter", adapter)]
        walls: dict[str, float] = {}
        for name, fn in order if pair % 2 == 0 else reversed(order):
            inside.clear()
            value, wall_s, cpu_s = _timed(fn)
            outputs[name] = value
            walls[name] = wall_s
            (inside_s,) = inside
            runs[name].append(
                {
                    "wall_s": round(wall_s, 4),
                    "cpu_s": round(cpu_s, 4),
                    "inside_lm_eval_s": round(inside_s, 4),
                    "outside_lm_eval_s": round(wall_s - inside_s, 4),
                }
            )
            print(f"{name:8s} wall {wall_s:7.2f} s  outside lm-eval {wall_s - inside_s:6.3f} s")
        pair_ratios.append(walls["adapter"] / walls["direct"])
        print(f"pair {pair}: adapter/direct = {pair_ratios[-1]:.3f}", flush=True)
    lm_eval.simple_evaluate = real_simple_evaluate

    def median(name: str, key: str) -> float:
        return round(statistics.median(r[key] for r in runs[name]), 4)

    cache = EvaluationCache(scratch / "eval_cache.sqlite")
    key = f"{loaded.model_hash}:base"
    cold_metrics, cold_s, _ = _timed(
        lambda: evaluate_accuracy(model, tokenizer, config, cache_key=key, cache=cache)
    )
    hits = []
    for _ in range(5):
        hit_metrics, hit_s, _ = _timed(
            lambda: evaluate_accuracy(model, tokenizer, config, cache_key=key, cache=cache)
        )
        assert hit_metrics == cold_metrics
        hits.append(round(hit_s, 6))
    assert cache.hits == len(hits) and cache.misses == 1

    result = {
        "wall_time_ratio": round(statistics.median(pair_ratios), 4),
        "cache_speedup": round(cold_s / statistics.median(hits), 1),
        "pair_ratios": [round(r, 4) for r in pair_ratios],
        "ratio_of_median_wall": round(median("adapter", "wall_s") / median("direct", "wall_s"), 4),
        "median_wall_s": {
            "direct": median("direct", "wall_s"),
            "adapter": median("adapter", "wall_s"),
        },
        "median_outside_lm_eval_s": {
            "direct": median("direct", "outside_lm_eval_s"),
            "adapter": median("adapter", "outside_lm_eval_s"),
        },
        "cache": {
            "cold_s": round(cold_s, 3),
            "hit_s": hits,
            "hits": cache.hits,
            "misses": cache.misses,
        },
        "metrics_identical": outputs["direct"] == outputs["adapter"],
        "metric": outputs["adapter"],
        "task": {
            "name": "arc_easy",
            "data": "local (shared benchmarks)",
            "limit": LIMIT,
            "num_fewshot": 0,
        },
        "batch_size": BATCH_SIZE,
        "pairs": PAIRS,
        "runs": runs,
        "model": {"spec": loaded.spec, "hash": loaded.model_hash, "dtype": "float32"},
        "machine": {
            **machine_summary(),
            "cpu_model": machine_summary()["cpu"],
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "started_at": started,
        "finished_at": now(),
        "targets": {"wall_time_ratio_max": 1.10, "cache_speedup_min": 20},
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("wall_time_ratio", "cache_speedup", "pair_ratios")}))


if __name__ == "__main__":
    main()
