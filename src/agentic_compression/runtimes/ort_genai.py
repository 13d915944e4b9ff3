"""ONNX Runtime GenAI on the CPU: the compressed model built into an ONNX model and served in-process.

Export saves the compressed model as a Hugging Face folder and runs ONNX Runtime GenAI's own model
builder on it (``python -m onnxruntime_genai.models.builder -p int4|int8|fp32 -e cpu``): int4 and
int8 are MatMulNBits weight-only quantization (block-wise, with the recipe's block size, algorithm
and accuracy level). The deployment loads the built folder with ``onnxruntime_genai`` on ``threads``
intra-op threads and measures there:

* perplexity and lm-eval accuracy from ONNX Runtime's logits for every position of the sequence
  (:class:`.scoring_lm.ScoringLM`);
* latency from its generator: ``append_tokens`` runs the prompt (prefill), each
  ``generate_next_token`` after the first runs one decode step;
* size from the bytes of the built folder (ONNX graph, external weights, GenAI config).

Token ids come from the model's Hugging Face tokenizer, as for the torch runtime (the builder copies
that tokenizer into the folder, and ``onnxruntime_genai`` only sees ids). Chosen by a measured
bake-off against CTranslate2 (``benchmarks/results/cpu_runtime_bakeoff.md``; docs/RUNTIMES.md).
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentic_compression.core.runtime_config import OnnxRuntimeSettings, RuntimeConfig
from agentic_compression.errors import MethodUnavailableError, UserInputError
from agentic_compression.runtimes.base import (
    ArtefactInfo,
    Deployment,
    HuggingFaceTokens,
    Runtime,
    ScorerDeployment,
    artefact_sha256,
)

INSTALL_HINT = "pip install 'agentic-compression[onnxruntime]' (onnxruntime-genai and onnx)"


def is_installed() -> bool:
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("onnxruntime_genai", "onnx", "onnx_ir", "onnxscript")
    )


def require() -> None:
    if not is_installed():
        raise MethodUnavailableError(f"the onnxruntime runtime is not installed: {INSTALL_HINT}")


def _log_softmax_at(logits: Any, targets: Sequence[int]) -> tuple[Any, Any]:
    import numpy as np

    rows = np.asarray(logits, dtype=np.float64)
    peak = rows.max(axis=1, keepdims=True)
    norm = np.log(np.exp(rows - peak).sum(axis=1)) + peak[:, 0]
    index = np.asarray(targets)
    chosen = rows[np.arange(len(index)), index]
    return chosen - norm, rows.argmax(axis=1) == index


@dataclass(frozen=True)
class Generated:
    """A greedy generation: tokens, the prompt's milliseconds and each decode step's."""

    tokens: tuple[int, ...]
    prefill_ms: float
    decode_ms: tuple[float, ...]


class OrtGenAIModel(HuggingFaceTokens):
    """A built ONNX Runtime GenAI folder, with the :class:`.scoring_lm.TokenScorer` operations."""

    def __init__(self, folder: Path, tokenizer: Any, context: int) -> None:
        import onnxruntime_genai as og

        config = og.Config(str(folder))
        config.clear_providers()  # the CPU
        self.og = og
        self.model = og.Model(config)
        self.tokenizer = tokenizer
        self.n_ctx = context

    def _generator(self, max_length: int) -> Any:
        params = self.og.GeneratorParams(self.model)
        params.set_search_options(max_length=max_length, do_sample=False, batch_size=1)
        return self.og.Generator(self.model, params)

    def logits(self, tokens: list[int]) -> Any:
        """Logits at every position of ``tokens`` (one forward pass over the sequence)."""
        import numpy as np

        generator = self._generator(len(tokens) + 1)
        generator.append_tokens(np.asarray([tokens], dtype=np.int32))
        return np.asarray(generator.get_output("logits"))[0]

    def next_token_logprobs(self, tokens: list[int], *, score_from: int = 1) -> tuple[Any, Any]:
        rows = self.logits(tokens)[score_from - 1 : len(tokens) - 1]
        return _log_softmax_at(rows, tokens[score_from:])

    def generate(
        self,
        prompt: list[int],
        max_new_tokens: int,
        *,
        stop_at_eog: bool = True,
        should_stop: Callable[[list[int]], bool] | None = None,
    ) -> Generated:
        import numpy as np

        generator = self._generator(len(prompt) + max_new_tokens)
        started = time.perf_counter()
        generator.append_tokens(np.asarray([prompt], dtype=np.int32))  # runs the prompt
        generator.generate_next_token()  # picks from the prompt's logits; later calls run a step
        tokens = [int(generator.get_next_tokens()[0])]
        stamps = [started, time.perf_counter()]
        while len(tokens) < max_new_tokens and not generator.is_done():
            if stop_at_eog and self.is_end_of_generation(tokens[-1]):
                break
            if should_stop is not None and should_stop(tokens):
                break
            generator.generate_next_token()
            tokens.append(int(generator.get_next_tokens()[0]))
            stamps.append(time.perf_counter())
        steps = [(b - a) * 1000 for a, b in itertools.pairwise(stamps)]
        return Generated(tuple(tokens), steps[0], tuple(steps[1:]))


class OrtGenAIDeployment(ScorerDeployment):
    """A built ONNX Runtime GenAI folder loaded in-process (:class:`OrtGenAIModel`)."""


def build_onnx(
    hf_folder: Path, output: Path, config: OnnxRuntimeSettings, cache: Path
) -> list[str]:
    """Run ONNX Runtime GenAI's model builder on ``hf_folder``; the options it was given."""
    options = ["hf_token=false", f"block_size={config.block_size}",
               f"accuracy_level={config.accuracy_level}", f"algo_config={config.algo}"]  # fmt: skip
    command = [
        sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(hf_folder),
        "-o", str(output), "-p", config.precision, "-e", "cpu", "-c", str(cache),
        "--extra_options", *(options if config.precision != "fp32" else ["hf_token=false"]),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        last = lines[-1] if lines else f"exit status {done.returncode}"  # the exception's line
        if "is not currently supported" in last:
            raise UserInputError(
                f"onnxruntime: the model builder cannot build this architecture ({last}); "
                "use runtime torch or llamacpp"
            )
        raise RuntimeError(f"the ONNX Runtime GenAI model builder failed: {last[:300]}")
    return options


class OrtGenAIRuntime(Runtime):
    name = "onnxruntime"

    def deploy(
        self, model: Any, base: Any, config: RuntimeConfig, context: Any, workdir: Path
    ) -> Deployment:
        import torch

        from agentic_compression.evaluation.footprint import size_stats

        assert isinstance(config, OnnxRuntimeSettings)
        require()
        hf_folder, built = workdir / "hf", workdir / "onnx"
        model.save_pretrained(hf_folder)
        base.tokenizer.save_pretrained(hf_folder)
        options = build_onnx(hf_folder, built, config, workdir / "cache")
        threads = config.threads or torch.get_num_threads()
        _set_threads(built / "genai_config.json", threads)
        size = size_stats(model, (_folder_bytes(built), f"ONNX Runtime GenAI {config.precision}"))
        shutil.rmtree(hf_folder, ignore_errors=True)
        llm = OrtGenAIModel(built, base.tokenizer, config.context)
        info = ArtefactInfo(
            runtime=self.name,
            format=f"ONNX {config.precision}"
            + (" MatMulNBits" if config.precision != "fp32" else ""),
            files=(built,),
            notes=(f"model builder options: {' '.join(options)}",),
            sha256=artefact_sha256(built),
            threads=threads,
        )
        return OrtGenAIDeployment(llm, size, info)

    def write_artefact(self, deployment: Deployment, output: Path) -> list[Path]:
        (folder,) = deployment.info.files
        shutil.copytree(folder, output, dirs_exist_ok=True)
        return sorted(p for p in output.rglob("*") if p.is_file())

    def serve_command(self, files: Sequence[Path], config: RuntimeConfig) -> str:
        folder = shlex.quote(str(files[0].parent)) if files else "DIR"
        return (
            'python -c "import onnxruntime_genai as og; '
            f'm = og.Model(og.Config({folder!r})); print(m.type)"  '
            "# then og.Generator(m, og.GeneratorParams(m)) per request (see onnxruntime-genai docs)"
        )


def _set_threads(genai_config: Path, threads: int) -> None:
    """Pin the decoder session's intra-op threads (ONNX Runtime's default is every core)."""
    data = json.loads(genai_config.read_text())
    options = data["model"]["decoder"].setdefault("session_options", {})
    options["intra_op_num_threads"] = threads
    options["inter_op_num_threads"] = 1
    genai_config.write_text(json.dumps(data, indent=4))


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
