"""The embedded SmolLM2-135M-Instruct on real ARC-Easy data through the adapter, cached per candidate."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentic_compression.evaluation.accuracy import AccuracyConfig, TaskSpec, evaluate_accuracy
from agentic_compression.evaluation.eval_cache import EvaluationCache

pytestmark = pytest.mark.integration


@pytest.fixture()
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread: on a shared 2-core machine two threads run this 6-10x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_embedded_model_arc_easy_and_cache_hit(
    embedded_model: Any, benchmarks_dir: Path, tmp_path: Path, one_torch_thread: None
) -> None:
    config = AccuracyConfig(
        (TaskSpec("arc_easy", metric="all"),),
        data_dir=benchmarks_dir,
        limit=20,
        cache_path=tmp_path / "eval.sqlite",
    )
    cache = EvaluationCache(config.cache_path)
    key = f"{embedded_model.model_hash}:base"

    start = time.perf_counter()
    cold = evaluate_accuracy(
        embedded_model.model, embedded_model.tokenizer, config, cache_key=key, cache=cache
    )
    cold_s = time.perf_counter() - start
    by_name = {m.metric: m for m in cold}
    assert set(by_name) == {"acc", "acc_norm"}
    for metric in cold:
        assert metric.n_examples == 20 and metric.num_fewshot == 0
        assert metric.stderr is not None and metric.stderr > 0.0
    # A real 135M model beats chance (0.25) on ARC-Easy; a broken tokenizer/model wiring does not.
    assert 0.35 <= by_name["acc"].value <= 0.9

    start = time.perf_counter()
    warm = evaluate_accuracy(
        embedded_model.model, embedded_model.tokenizer, config, cache_key=key, cache=cache
    )
    warm_s = time.perf_counter() - start
    assert [m.model_copy(update={"from_cache": False}) for m in warm] == list(cold)
    assert all(m.from_cache for m in warm) and cache.hits == 1
    assert cold_s / warm_s >= 20
