"""The evaluation cache: a hit returns identical metrics without running lm-eval or the model."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from agentic_compression.core.metrics import AccuracyMetric
from agentic_compression.errors import UserInputError
from agentic_compression.evaluation.accuracy import AccuracyConfig, TaskSpec, evaluate_accuracy
from agentic_compression.evaluation.eval_cache import EvaluationCache, cache_entry_key


def _metric(value: float) -> AccuracyMetric:
    return AccuracyMetric(
        task="arc_easy",
        metric="acc",
        value=value,
        stderr=0.1,
        higher_is_better=True,
        n_examples=5,
        num_fewshot=0,
    )


def test_cache_round_trip_persists_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    key = cache_entry_key("m1:r1", {"task": "arc_easy", "limit": 5})
    first = EvaluationCache(path)
    assert first.get(key) is None and first.misses == 1
    first.put(key, [_metric(0.4)], candidate_key="m1:r1", task="arc_easy", task_config={"x": 1})
    second = EvaluationCache(path)
    assert second.get(key) == (_metric(0.4),) and second.hits == 1
    assert len(second) == 1
    second.clear()
    assert len(second) == 0


def test_entry_key_depends_on_candidate_and_config() -> None:
    base = cache_entry_key("m1:r1", {"task": "arc_easy", "limit": 5, "num_fewshot": 0})
    assert base == cache_entry_key("m1:r1", {"num_fewshot": 0, "limit": 5, "task": "arc_easy"})
    assert base != cache_entry_key("m2:r1", {"task": "arc_easy", "limit": 5, "num_fewshot": 0})
    assert base != cache_entry_key("m1:r1", {"task": "arc_easy", "limit": 6, "num_fewshot": 0})
    assert base != cache_entry_key("m1:r1", {"task": "arc_easy", "limit": 5, "num_fewshot": 1})


def test_hit_skips_lm_eval_and_the_model(
    tiny_llama: Any, embedded_tokenizer: Any, benchmarks_dir: Path, tmp_path: Path
) -> None:
    config = AccuracyConfig(
        (TaskSpec("arc_easy", metric="all"), TaskSpec("hellaswag")),
        data_dir=benchmarks_dir,
        limit=4,
        cache_path=tmp_path / "cache.sqlite",
    )
    cache = EvaluationCache(config.cache_path)
    start = time.perf_counter()
    cold = evaluate_accuracy(tiny_llama, embedded_tokenizer, config, cache_key="m1:r1", cache=cache)
    cold_s = time.perf_counter() - start
    assert (cache.hits, cache.misses, len(cache)) == (0, 2, 2)

    start = time.perf_counter()
    warm = evaluate_accuracy(tiny_llama, embedded_tokenizer, config, cache_key="m1:r1", cache=cache)
    warm_s = time.perf_counter() - start
    assert [m.model_copy(update={"from_cache": False}) for m in warm] == list(cold)
    assert all(m.from_cache for m in warm) and not any(m.from_cache for m in cold)
    assert (cache.hits, cache.misses) == (2, 2)
    assert cold_s / warm_s > 20

    # No model at all: a full hit never reaches lm-eval (which would need one).
    assert evaluate_accuracy(None, None, config, cache_key="m1:r1", cache=cache) == warm
    # The cache file configured in the config is the same store.
    assert evaluate_accuracy(None, None, config, cache_key="m1:r1") == warm


def test_other_candidate_or_fidelity_is_a_miss(
    tiny_llama: Any, embedded_tokenizer: Any, benchmarks_dir: Path, tmp_path: Path
) -> None:
    config = AccuracyConfig(
        (TaskSpec("arc_easy"),), data_dir=benchmarks_dir, limit=3, cache_path=tmp_path / "c.sqlite"
    )
    cache = EvaluationCache(config.cache_path)
    evaluate_accuracy(tiny_llama, embedded_tokenizer, config, cache_key="m1:r1", cache=cache)
    with pytest.raises(ValueError, match="model and tokenizer"):
        evaluate_accuracy(None, None, config, cache_key="m2:r1", cache=cache)
    bigger = AccuracyConfig(
        (TaskSpec("arc_easy"),), data_dir=benchmarks_dir, limit=4, cache_path=tmp_path / "c.sqlite"
    )
    (metric,) = evaluate_accuracy(
        tiny_llama, embedded_tokenizer, bigger, cache_key="m1:r1", cache=cache
    )
    assert metric.n_examples == 4
    assert cache.hits == 0 and len(cache) == 2


def test_no_cache_key_means_no_cache(
    tiny_llama: Any, embedded_tokenizer: Any, benchmarks_dir: Path, tmp_path: Path
) -> None:
    config = AccuracyConfig(
        (TaskSpec("arc_easy"),), data_dir=benchmarks_dir, limit=2, cache_path=tmp_path / "c.sqlite"
    )
    evaluate_accuracy(tiny_llama, embedded_tokenizer, config)
    assert not (tmp_path / "c.sqlite").exists()
    with pytest.raises(UserInputError, match="cache_key"):
        evaluate_accuracy(tiny_llama, embedded_tokenizer, config, cache_key=" ")
