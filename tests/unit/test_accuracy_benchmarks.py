"""Every benchmark end to end through lm-eval on a tiny random Llama with the real shared data.

The tiny model's answers are close to chance (often all wrong on a handful of examples), so the tests
check what must hold whatever the model: the metric is lm-eval's, on the requested number of examples
and few-shot count, with lm-eval's standard error (sample standard deviation / sqrt(n) for accuracy).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from agentic_compression.core.metrics import AccuracyMetric
from agentic_compression.errors import UserInputError
from agentic_compression.evaluation.accuracy import (
    AccuracyConfig,
    TaskSpec,
    evaluate_accuracy,
    plan_evaluation,
)

LIMIT = 5


def _binary_stderr(value: float, n: int) -> float:
    return math.sqrt(value * (1.0 - value) / (n - 1))


def _check(metric: AccuracyMetric, task: str, name: str, n: int, shots: int) -> None:
    assert (metric.task, metric.metric) == (task, name)
    assert 0.0 <= metric.value <= 1.0
    assert metric.stderr is not None and metric.stderr >= 0.0
    assert metric.higher_is_better is True
    assert metric.n_examples == n
    assert metric.num_fewshot == shots
    # Every score says which data made it: here the shared benchmark files, by content hash.
    assert metric.data_source == "local"
    assert metric.data_fingerprint and not metric.data_fingerprint.startswith("hub:")


@pytest.mark.parametrize(
    ("spec", "metric_name", "shots"),
    [
        (TaskSpec("arc_easy"), "acc", 0),
        (TaskSpec("arc_challenge"), "acc_norm", 0),
        (TaskSpec("hellaswag"), "acc_norm", 0),
        (TaskSpec("commonsense_qa"), "acc", 0),
        (TaskSpec("mmlu_abstract_algebra"), "acc", 0),
        (TaskSpec("gsm8k", gen_kwargs={"max_gen_toks": 12}), "exact_match", 5),
    ],
    ids=lambda value: value.name if isinstance(value, TaskSpec) else None,
)
def test_binary_benchmark_on_tiny_model(
    tiny_llama: Any,
    embedded_tokenizer: Any,
    benchmarks_dir: Path,
    spec: TaskSpec,
    metric_name: str,
    shots: int,
) -> None:
    config = AccuracyConfig((spec,), data_dir=benchmarks_dir, limit=LIMIT)
    (metric,) = evaluate_accuracy(tiny_llama, embedded_tokenizer, config)
    _check(metric, spec.name, metric_name, LIMIT, shots)
    assert metric.data_fingerprint == plan_evaluation(config)[0].resolved.data_fingerprint
    assert metric.value * LIMIT == pytest.approx(round(metric.value * LIMIT))  # k correct of 5
    assert metric.stderr == pytest.approx(_binary_stderr(metric.value, LIMIT))


def test_truthfulqa_mc2_has_positive_stderr(
    tiny_llama: Any, embedded_tokenizer: Any, benchmarks_dir: Path
) -> None:
    # MC2 is the normalised probability of the true answers: continuous, so stderr > 0.
    config = AccuracyConfig(
        (TaskSpec("truthfulqa_mc2", num_fewshot=3),), data_dir=benchmarks_dir, limit=3
    )
    (metric,) = evaluate_accuracy(tiny_llama, embedded_tokenizer, config)
    # The task is zero-shot by construction; the record keeps the count actually used.
    _check(metric, "truthfulqa_mc2", "acc", 3, 0)
    assert 0.0 < metric.value < 1.0 and metric.stderr is not None and metric.stderr > 0.0


def test_mmlu_group_counts_examples_over_subjects(
    tiny_llama: Any, embedded_tokenizer: Any, benchmarks_dir: Path
) -> None:
    # The limit applies per subject; 2 each is the least for which every subject has a stderr.
    config = AccuracyConfig((TaskSpec("mmlu"),), data_dir=benchmarks_dir, limit=2)
    (metric,) = evaluate_accuracy(tiny_llama, embedded_tokenizer, config)
    _check(metric, "mmlu", "acc", 2 * 57, 0)
    assert metric.stderr is not None and metric.stderr > 0.0


def test_few_shot_override_and_all_metrics(
    tiny_llama: Any, embedded_tokenizer: Any, benchmarks_dir: Path
) -> None:
    spec = TaskSpec("arc_challenge", num_fewshot=2, limit=3, metric="all", batch_size=2)
    metrics = evaluate_accuracy(
        tiny_llama, embedded_tokenizer, AccuracyConfig((spec,), data_dir=benchmarks_dir)
    )
    assert sorted(m.metric for m in metrics) == ["acc", "acc_norm"]
    for metric in metrics:
        _check(metric, "arc_challenge", metric.metric, 3, 2)


def test_gsm8k_both_filters(tiny_llama: Any, embedded_tokenizer: Any, benchmarks_dir: Path) -> None:
    spec = TaskSpec("gsm8k", num_fewshot=1, metric="all", gen_kwargs={"max_gen_toks": 8})
    metrics = evaluate_accuracy(
        tiny_llama, embedded_tokenizer, AccuracyConfig((spec,), data_dir=benchmarks_dir, limit=3)
    )
    assert sorted(m.filter for m in metrics) == ["flexible-extract", "strict-match"]
    for metric in metrics:
        _check(metric, "gsm8k", "exact_match", 3, 1)


def test_humaneval_runs_only_when_allowed(
    tiny_llama: Any, embedded_tokenizer: Any, benchmarks_dir: Path
) -> None:
    spec = TaskSpec("humaneval", gen_kwargs={"max_gen_toks": 24})
    with pytest.raises(UserInputError, match="allow-code-execution"):
        evaluate_accuracy(
            tiny_llama, embedded_tokenizer, AccuracyConfig((spec,), data_dir=benchmarks_dir)
        )
    config = AccuracyConfig(
        (spec,), data_dir=benchmarks_dir, limit=3, allow_code_execution=True, code_timeout_s=5.0
    )
    (metric,) = evaluate_accuracy(tiny_llama, embedded_tokenizer, config)
    assert (metric.metric, metric.filter) == ("pass@1", "create_test")
    _check(metric, "humaneval", "pass@1", 3, 0)
    assert metric.stderr == pytest.approx(_binary_stderr(metric.value, 3))


def test_gpt2_conv1d_model_also_evaluates(
    tiny_gpt2: Any, embedded_tokenizer: Any, benchmarks_dir: Path
) -> None:
    config = AccuracyConfig((TaskSpec("hellaswag"),), data_dir=benchmarks_dir, limit=3)
    (metric,) = evaluate_accuracy(tiny_gpt2, embedded_tokenizer, config)
    _check(metric, "hellaswag", "acc_norm", 3, 0)


def test_explicit_test_file_runs(
    tiny_llama: Any, embedded_tokenizer: Any, benchmarks_dir: Path, tmp_path: Path
) -> None:
    source = benchmarks_dir / "commonsense_qa" / "validation.jsonl"
    subset = tmp_path / "csqa-first4.jsonl"
    subset.write_text("".join(source.read_text().splitlines(keepends=True)[:4]))
    spec = TaskSpec("commonsense_qa", data_files={"validation": subset})
    (metric,) = evaluate_accuracy(tiny_llama, embedded_tokenizer, AccuracyConfig((spec,)))
    _check(metric, "commonsense_qa", "acc", 4, 0)  # no limit: the whole 4-row file
