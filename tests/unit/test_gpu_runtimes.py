"""The GPU paths up to the hardware boundary: vLLM and torchao's CUDA-only kernels refuse in one
line on a machine without them, their settings and space choices round-trip, and the pure parts of
the vLLM runtime (prompt log-probabilities -> NLL) are right. ``benchmarks/runtime_table.py --gpu``
measures them on a GPU."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from dataclasses import dataclass

import pytest

from agentic_compression.carbon.energy_meter import CodeCarbonMeter
from agentic_compression.compression.presets import preset
from agentic_compression.core.runtime_config import VllmSettings, parse_runtime
from agentic_compression.errors import MethodUnavailableError, UserInputError
from agentic_compression.evaluation.candidate import MeasureConfig, evaluate_candidate
from agentic_compression.evaluation.latency import LatencyConfig
from agentic_compression.models.loading import LoadedModel
from agentic_compression.planning.space import VLLM_CHOICES, SearchSpace, SpacePoint
from agentic_compression.runtimes import installed_runtimes, runtime_for
from agentic_compression.runtimes.vllm_runtime import llm_compressor_recipe, prompt_nll
from agentic_compression.workflow.runner import SearchSettings

HAS_GPU_STACK = importlib.util.find_spec("vllm") is not None
no_vllm = pytest.mark.skipif(HAS_GPU_STACK, reason="vLLM is installed: the refusal cannot be seen")


@dataclass
class _Logprob:  # the shape of vllm.sequence.Logprob
    logprob: float


def test_prompt_logprobs_sum_to_the_window_nll() -> None:
    tokens = [5, 7, 9]
    entries = [None, {7: _Logprob(-1.5), 3: _Logprob(-0.5)}, {9: _Logprob(-2.0)}]
    assert prompt_nll(entries, tokens) == (3.5, 2)
    with pytest.raises(ValueError, match="2 prompt log-probs for 3 tokens"):
        prompt_nll(entries[:2], tokens)


def test_vllm_settings_validate_and_name_the_schemes() -> None:
    assert parse_runtime({"name": "vllm", "scheme": "W4A16"}).label == "vllm-W4A16"
    assert preset("vllm-fp8").runtime == VllmSettings(scheme="FP8")
    with pytest.raises(UserInputError, match="'none', 'W4A16', 'W8A8' or 'FP8'"):
        parse_runtime({"name": "vllm", "scheme": "W2"})
    with pytest.raises(UserInputError, match="cannot load"):
        preset("int8-weight-only").with_runtime(VllmSettings())


@no_vllm
def test_vllm_runtime_refuses_in_one_line_without_vllm() -> None:
    assert "vllm" not in installed_runtimes()
    with pytest.raises(
        MethodUnavailableError, match=r"needs vLLM: pip install 'agentic-compression\[vllm\]'"
    ):
        runtime_for(VllmSettings())
    with pytest.raises(UserInputError, match=r"needs vLLM.*available here: torch"):
        SearchSettings(model="smollm2-135m", runtimes="torch,vllm").runtime_names()


@no_vllm
def test_cli_run_with_vllm_here_exits_2_naming_the_fix() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agentic_compression.cli.app", "run", "--runtime", "vllm",
         "--max-trials", "1"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "needs vLLM" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("float8-dynamic", "float8_dynamic needs a CUDA GPU with FP8 kernels"),
        *([] if HAS_GPU_STACK else [("vllm-w4a16", "needs vLLM")]),
    ],
)
def test_gpu_candidates_on_a_cpu_are_failed_trials_with_the_reason(  # type: ignore[no-untyped-def]
    name, message, tiny_llama, embedded_tokenizer
) -> None:
    base = LoadedModel("tiny", "test", tiny_llama, embedded_tokenizer, "tinyhash")
    config = MeasureConfig(latency=LatencyConfig(new_tokens=2, repeats=1), perplexity=None)
    result = evaluate_candidate(base, preset(name), config, CodeCarbonMeter("USA"))
    assert result.status == "failed" and result.metrics is None
    assert message in (result.error or "")


def test_search_space_offers_vllm_choices_only_with_vllm() -> None:
    with_vllm = SearchSpace(quantizations=("fp32", *VLLM_CHOICES))
    for choice, settings in VLLM_CHOICES.items():
        point = SpacePoint("wanda", 0.3, choice)
        recipe = with_vllm.to_recipe(point)
        assert recipe.runtime == settings and with_vllm.from_recipe(recipe) == point
    here = SearchSpace.for_this_machine(installed_runtimes())
    assert not any(q.startswith("vllm-") for q in here.quantizations) or HAS_GPU_STACK
    assert "float8_dynamic" not in SearchSpace.for_this_machine(("torch",)).quantizations or (
        HAS_GPU_STACK
    )


def test_llm_compressor_recipes_keep_the_output_head() -> None:
    pytest.importorskip("llmcompressor")
    for scheme in ("W4A16", "W8A8", "FP8"):
        assert "lm_head" in llm_compressor_recipe(scheme).ignore
