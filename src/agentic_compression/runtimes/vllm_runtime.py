"""vLLM on a CUDA GPU: the compressed model saved as a Hugging Face checkpoint and served by vLLM.

Export writes the model (after the recipe's pruning and casts) to ``<workdir>/hf``; with a
``scheme`` it is first quantized by llm-compressor's ``oneshot`` and saved in compressed-tensors
format (W4A16 / W8A8 with GPTQ on the calibration text, FP8 with dynamic activation scales), the
format vLLM loads natively. The deployment then measures inside vLLM:

* perplexity: vLLM's prompt log-probabilities (``prompt_logprobs=0`` returns the log-probability
  of every prompt token) over the same WikiText-2 windows as every runtime;
* latency: one request stepped through the engine, one ``step()`` per token;
* accuracy: lm-eval over the same log-probabilities (:class:`.scoring_lm.ScoringLM`);
* size: the bytes of the checkpoint folder.

Energy comes from the run's meter (NVML on an NVIDIA GPU). vLLM pins its own torch build, so it is
an optional extra meant for its own environment on a GPU machine; without vLLM or a GPU the runtime
refuses in one line (:func:`require_vllm`).
"""

from __future__ import annotations

import importlib.util
import itertools
import shlex
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentic_compression.core.runtime_config import RuntimeConfig, VllmSettings
from agentic_compression.errors import MethodUnavailableError
from agentic_compression.runtimes.base import (
    ArtefactInfo,
    Deployment,
    GenerationTimes,
    HuggingFaceTokens,
    Runtime,
    ScorerDeployment,
)

INSTALL_HINT = (
    "pip install 'agentic-compression[vllm]' on a machine with an NVIDIA GPU "
    "(vLLM pins its own torch build: use a separate environment)"
)
#: Calibration for GPTQ (W4A16, W8A8): sequences x tokens of the calibration text.
GPTQ_SAMPLES, GPTQ_SEQ_LEN = 64, 512
#: Minimum CUDA compute capability of FP8 kernels (Ada / Hopper).
FP8_CAPABILITY = (8, 9)


def require_vllm(config: VllmSettings | None = None) -> None:
    """Raise :class:`MethodUnavailableError` in one line unless vLLM, a GPU (and llm-compressor
    where ``config`` quantizes) are present."""
    if importlib.util.find_spec("vllm") is None:
        raise MethodUnavailableError(f"the vllm runtime needs vLLM: {INSTALL_HINT}")
    import torch

    if not torch.cuda.is_available():
        raise MethodUnavailableError(
            "the vllm runtime needs a CUDA GPU and none is visible; use --runtime torch,llamacpp"
        )
    if config is None or config.scheme == "none":
        return
    if importlib.util.find_spec("llmcompressor") is None:
        raise MethodUnavailableError(
            f"vllm scheme {config.scheme} needs llm-compressor: {INSTALL_HINT}"
        )
    if config.scheme == "FP8" and torch.cuda.get_device_capability() < FP8_CAPABILITY:
        raise MethodUnavailableError(
            f"vllm scheme FP8 needs compute capability 8.9+; this GPU has "
            f"{torch.cuda.get_device_capability()}: use W8A8 or W4A16"
        )


def llm_compressor_recipe(scheme: str) -> Any:
    """The llm-compressor modifiers for ``scheme`` (the output head stays in full precision)."""
    from llmcompressor.modifiers.quantization import GPTQModifier, QuantizationModifier

    if scheme == "FP8":
        return QuantizationModifier(targets="Linear", scheme="FP8_DYNAMIC", ignore=["lm_head"])
    return GPTQModifier(targets="Linear", scheme=scheme, ignore=["lm_head"])


def prompt_nll(prompt_logprobs: Sequence[Any], tokens: Sequence[int]) -> tuple[float, int]:
    """Summed negative log-likelihood of ``tokens[1:]`` from vLLM's ``prompt_logprobs``.

    vLLM returns one entry per prompt token (None for the first), each a dict token id -> Logprob
    that always holds the prompt's own token.
    """
    if len(prompt_logprobs) != len(tokens):
        raise ValueError(f"{len(prompt_logprobs)} prompt log-probs for {len(tokens)} tokens")
    total = 0.0
    for position in range(1, len(tokens)):
        entry = prompt_logprobs[position]
        total -= float(entry[tokens[position]].logprob)
    return total, len(tokens) - 1


@dataclass(frozen=True)
class _Generated:
    tokens: tuple[int, ...]


class VllmScorer(HuggingFaceTokens):
    """The :class:`.scoring_lm.TokenScorer` over a ``vllm.LLM``."""

    def __init__(self, llm: Any, context: int) -> None:
        self.llm = llm
        self.tokenizer = llm.get_tokenizer()
        self.n_ctx = context

    def _run(self, prompts: Sequence[Sequence[int]], **sampling: Any) -> list[Any]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        params = SamplingParams(temperature=0.0, **sampling)
        requests = [TokensPrompt(prompt_token_ids=list(p)) for p in prompts]
        return list(self.llm.generate(requests, params, use_tqdm=False))

    def next_token_logprobs(self, tokens: list[int], *, score_from: int = 1) -> tuple[Any, Any]:
        import numpy as np

        (out,) = self._run([tokens], max_tokens=1, prompt_logprobs=1)
        logprobs, greedy = [], []
        for position in range(score_from, len(tokens)):
            entry = out.prompt_logprobs[position]
            logprobs.append(float(entry[tokens[position]].logprob))
            best = max(entry.values(), key=lambda item: item.logprob)
            greedy.append(float(entry[tokens[position]].logprob) >= float(best.logprob))
        return np.asarray(logprobs), np.asarray(greedy)

    def window_nll(self, windows: Sequence[Sequence[int]]) -> tuple[float, int]:
        total, predicted = 0.0, 0
        for out, window in zip(
            self._run(windows, max_tokens=1, prompt_logprobs=0), windows, strict=True
        ):
            nll, count = prompt_nll(out.prompt_logprobs, window)
            total, predicted = total + nll, predicted + count
        return total, predicted

    def generate(
        self,
        prompt: list[int],
        max_new_tokens: int,
        *,
        stop_at_eog: bool = True,
        should_stop: Callable[[list[int]], bool] | None = None,
    ) -> _Generated:
        # Greedy decoding is deterministic: generate the whole budget, then cut where the caller
        # would have stopped (vLLM cannot call back between steps).
        (out,) = self._run([prompt], max_tokens=max_new_tokens, ignore_eos=not stop_at_eog)
        produced = list(out.outputs[0].token_ids)
        for end in range(1, len(produced) + 1):
            if should_stop is not None and should_stop(produced[:end]):
                return _Generated(tuple(produced[:end]))
        return _Generated(tuple(produced))

    def time_generation(self, prompt: Sequence[int], new_tokens: int) -> GenerationTimes:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        engine = self.llm.llm_engine
        params = SamplingParams(temperature=0.0, max_tokens=new_tokens + 1, ignore_eos=True)
        engine.add_request(
            f"timing-{time.monotonic_ns()}", TokensPrompt(prompt_token_ids=list(prompt)), params
        )
        stamps = [time.perf_counter()]
        produced = 0
        while engine.has_unfinished_requests():
            outputs = engine.step()
            now = time.perf_counter()
            for output in outputs:
                count = len(output.outputs[0].token_ids) if output.outputs else 0
                if count > produced:
                    stamps.append(now)
                    produced = count
        steps = [(b - a) * 1000 for a, b in itertools.pairwise(stamps)]
        if len(steps) < 2:
            raise RuntimeError(f"vLLM produced {len(steps)} timed steps, expected {new_tokens + 1}")
        return GenerationTimes(steps[0], tuple(steps[1:]))


class VllmDeployment(ScorerDeployment):
    """A checkpoint served by vLLM on the GPU: batched prompt log-probabilities for perplexity,
    engine steps for latency."""

    @property
    def threads(self) -> int:
        import torch

        return torch.get_num_threads()

    @property
    def device(self) -> str:
        return "cuda"

    def window_nll(self, windows: Sequence[Sequence[int]]) -> tuple[float, int]:
        return self.llm.window_nll(windows)

    def time_generation(self, prompt: Sequence[int], new_tokens: int) -> GenerationTimes:
        return self.llm.time_generation(prompt, new_tokens)

    def close(self) -> None:
        import gc

        import torch

        del self.llm
        gc.collect()
        torch.cuda.empty_cache()


class VllmRuntime(Runtime):
    name = "vllm"

    def deploy(
        self, model: Any, base: Any, config: RuntimeConfig, context: Any, workdir: Path
    ) -> Deployment:
        assert isinstance(config, VllmSettings)
        require_vllm(config)
        from vllm import LLM

        from agentic_compression.evaluation.footprint import size_stats

        folder = workdir / "hf"
        notes: list[str] = []
        if config.scheme == "none":
            model.save_pretrained(folder)
        else:
            notes.append(self._quantize(model, base, config, context, folder))
        base.tokenizer.save_pretrained(folder)
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        on_disk = sum(p.stat().st_size for p in files)
        size = size_stats(model, (on_disk, f"Hugging Face checkpoint ({config.label})"))
        llm = LLM(
            model=str(folder), dtype=config.dtype, gpu_memory_utilization=config.gpu_memory,
            max_model_len=config.context, seed=context.seed,
        )  # fmt: skip
        info = ArtefactInfo(
            runtime=self.name,
            format="compressed-tensors" if config.scheme != "none" else "safetensors",
            files=(folder,),
            notes=tuple(notes),
        )
        return VllmDeployment(VllmScorer(llm, config.context), size, info)

    @staticmethod
    def _quantize(model: Any, base: Any, config: VllmSettings, context: Any, folder: Path) -> str:
        from llmcompressor import oneshot

        recipe = llm_compressor_recipe(config.scheme)
        if config.scheme == "FP8":
            oneshot(model=model, recipe=recipe)
            described = "FP8 dynamic (no calibration)"
        else:
            from datasets import Dataset

            from agentic_compression.compression.calibration import calibration_batch

            batch = calibration_batch(
                base.tokenizer, context.calibration, GPTQ_SAMPLES, GPTQ_SEQ_LEN
            )
            rows = {"input_ids": [list(map(int, row)) for row in batch.tolist()]}
            oneshot(
                model=model, recipe=recipe, dataset=Dataset.from_dict(rows),
                max_seq_length=GPTQ_SEQ_LEN, num_calibration_samples=GPTQ_SAMPLES,
            )  # fmt: skip
            described = f"GPTQ {config.scheme}: {context.calibration.description}, " \
                f"{GPTQ_SAMPLES} x {GPTQ_SEQ_LEN} tokens"  # fmt: skip
            context.calibration_used.append(described)
        model.save_pretrained(folder, save_compressed=True)
        return f"llm-compressor {described}"

    def write_artefact(self, deployment: Deployment, output: Path) -> list[Path]:
        (folder,) = deployment.info.files
        shutil.copytree(folder, output, dirs_exist_ok=True)
        return sorted(p for p in output.rglob("*") if p.is_file())

    def serve_command(self, files: Sequence[Path], config: RuntimeConfig) -> str:
        assert isinstance(config, VllmSettings)
        folder = shlex.quote(str(files[0].parent)) if files else "DIR"
        return (
            f"vllm serve {folder} --max-model-len {config.context} "
            f"--gpu-memory-utilization {config.gpu_memory} --dtype {config.dtype}"
        )
