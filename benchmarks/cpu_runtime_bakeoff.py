"""Bake-off for the second CPU runtime: CTranslate2, ONNX Runtime GenAI (and llama.cpp as the bar).

Run alone on the machine, in a virtual environment that has this project plus the candidates
(they are not project dependencies until one wins)::

    python3 -m venv /tmp/bake
    echo "$PWD/.venv/lib/python3.11/site-packages" > /tmp/bake/lib/python3.11/site-packages/zz.pth
    /tmp/bake/bin/pip install ctranslate2==4.8.5 onnxruntime-genai==0.18.0 onnx onnx_ir onnxscript
    /tmp/bake/bin/pip uninstall -y torch transformers huggingface_hub tokenizers  # use the project's
    /tmp/bake/bin/python benchmarks/cpu_runtime_bakeoff.py

Every runtime is wrapped as a :class:`~agentic_compression.runtimes.base.Deployment`, so the
product's own measurement code measures all of them the same way: perplexity on the same WikiText-2
windows (16 x 512), latency (128-token prompt, 32 decode steps, 1 warm-up + 5 repeats), accuracy with
lm-eval (ARC-Easy acc, HellaSwag acc_norm, the first 200 examples each, 0-shot) over each runtime's
own log-probabilities (:class:`~agentic_compression.runtimes.scoring_lm.ScoringLM`). Model: the
embedded SmolLM2-135M (its Hugging Face folder). Writes ``benchmarks/results/cpu_runtime_bakeoff.
{json,md}`` after every row.

OpenVINO (optimum-intel 2.2 + NNCF) was the third candidate: ``pip install optimum-intel`` pulls
transformers 5.5.4 and torch 2.14.1, and beside this project's transformers 5.24 its import fails
(``Could not import module 'AutoProcessor'``); it was not measured in a separate environment of its
own. The results file says so.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agentic_compression.core.metrics import SizeStats
from agentic_compression.runtimes.base import (
    ArtefactInfo,
    Deployment,
    GenerationTimes,
    HuggingFaceTokens,
)

RESULTS = Path(__file__).parent / "results"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"
THREADS = 2


def _logprobs(logits: Any, targets: Sequence[int]) -> tuple[Any, Any]:
    logits = np.asarray(logits, dtype=np.float64)
    peak = logits.max(axis=1, keepdims=True)
    norm = np.log(np.exp(logits - peak).sum(axis=1)) + peak[:, 0]
    index = np.asarray(targets)
    return logits[np.arange(len(index)), index] - norm, logits.argmax(axis=1) == index


@dataclass(frozen=True)
class _Generated:
    tokens: tuple[int, ...]
    prefill_ms: float
    decode_ms: tuple[float, ...]


class _Engine(HuggingFaceTokens):
    """The part each runtime implements: all-position logits and a timed greedy generation."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.n_ctx = 2048

    def logits(self, tokens: list[int]) -> Any:
        raise NotImplementedError

    def greedy(
        self, prompt: list[int], new: int, should_stop: Callable[[list[int]], bool] | None
    ) -> _Generated:
        raise NotImplementedError

    def next_token_logprobs(self, tokens: list[int], *, score_from: int = 1) -> tuple[Any, Any]:
        logits = self.logits(tokens)[score_from - 1 : len(tokens) - 1]
        return _logprobs(logits, tokens[score_from:])

    def generate(self, prompt: list[int], max_new_tokens: int, *, stop_at_eog: bool = True,
                 should_stop: Callable[[list[int]], bool] | None = None) -> _Generated:  # fmt: skip

        def stop(tokens: list[int]) -> bool:
            if stop_at_eog and tokens and self.is_end_of_generation(tokens[-1]):
                return True
            return should_stop is not None and should_stop(tokens)

        return self.greedy(prompt, max_new_tokens, stop)


class CTranslate2Engine(_Engine):
    def __init__(self, folder: Path, tokenizer: Any, compute_type: str) -> None:
        import ctranslate2

        super().__init__(tokenizer)
        self.generator = ctranslate2.Generator(
            str(folder), device="cpu", compute_type=compute_type, intra_threads=THREADS
        )

    def logits(self, tokens: list[int]) -> Any:
        out = self.generator.forward_batch([tokens])
        return np.asarray(out)[0]

    def greedy(self, prompt: list[int], new: int, should_stop: Any) -> _Generated:
        tokens: list[int] = []
        stamps = [time.perf_counter()]
        for step in self.generator.generate_tokens(
            [self.tokenizer.convert_ids_to_tokens(t) for t in prompt],
            max_length=new, sampling_topk=1, end_token=[],
        ):  # fmt: skip
            stamps.append(time.perf_counter())
            tokens.append(int(step.token_id))
            if should_stop(tokens):
                break
        steps = [(b - a) * 1000 for a, b in itertools.pairwise(stamps)]
        return _Generated(tuple(tokens), steps[0], tuple(steps[1:]))


class OnnxGenAIEngine(_Engine):
    def __init__(self, folder: Path, tokenizer: Any) -> None:
        import onnxruntime_genai as og

        super().__init__(tokenizer)
        config = og.Config(str(folder))
        config.clear_providers()
        self.og = og
        self.model = og.Model(config)

    def _generator(self, max_length: int) -> Any:
        params = self.og.GeneratorParams(self.model)
        params.set_search_options(max_length=max_length, do_sample=False, batch_size=1)
        return self.og.Generator(self.model, params)

    def logits(self, tokens: list[int]) -> Any:
        generator = self._generator(len(tokens) + 1)
        generator.append_tokens(np.asarray([tokens], dtype=np.int32))
        return np.asarray(generator.get_output("logits"))[0]

    def greedy(self, prompt: list[int], new: int, should_stop: Any) -> _Generated:
        generator = self._generator(len(prompt) + new)
        started = time.perf_counter()
        generator.append_tokens(np.asarray([prompt], dtype=np.int32))  # runs the prompt
        generator.generate_next_token()  # picks from the prompt's logits; later calls run the model
        tokens = [int(generator.get_next_tokens()[0])]
        stamps = [started, time.perf_counter()]
        while len(tokens) < new and not should_stop(tokens) and not generator.is_done():
            generator.generate_next_token()
            tokens.append(int(generator.get_next_tokens()[0]))
            stamps.append(time.perf_counter())
        steps = [(b - a) * 1000 for a, b in itertools.pairwise(stamps)]
        return _Generated(tuple(tokens), steps[0], tuple(steps[1:]))


class EngineDeployment(Deployment):
    def __init__(self, engine: _Engine, name: str, files: Sequence[Path]) -> None:
        self.engine = engine
        size = sum(
            p.stat().st_size
            for f in files
            for p in (f.rglob("*") if f.is_dir() else [f])
            if p.is_file()
        )
        self._size = SizeStats(
            serialized_bytes=size, serialization=f"{name} files", parameter_count=0,
            zero_parameter_count=0, linear_weight_sparsity=0.0, overall_sparsity=0.0,
        )  # fmt: skip
        self.info = ArtefactInfo(runtime=name, format=name, files=tuple(files), threads=THREADS)

    @property
    def threads(self) -> int:
        return THREADS

    @property
    def device(self) -> str:
        return "cpu"

    def tokenize(self, text: str) -> list[int]:
        return self.engine.tokenize(text)

    def window_nll(self, windows: Sequence[Sequence[int]]) -> tuple[float, int]:
        total, count = 0.0, 0
        for window in windows:
            logprobs, _ = self.engine.next_token_logprobs(list(window))
            total -= float(logprobs.sum())
            count += len(logprobs)
        return total, count

    def time_generation(self, prompt: Sequence[int], new_tokens: int) -> GenerationTimes:
        result = self.engine.greedy(list(prompt), new_tokens + 1, lambda _: False)
        return GenerationTimes(result.prefill_ms, result.decode_ms)

    def lm_eval_model(self, batch_size: int) -> Any:
        from agentic_compression.runtimes.scoring_lm import ScoringLM

        return ScoringLM(self.engine, batch_size)  # type: ignore[arg-type]

    def size_stats(self) -> SizeStats:
        return self._size


def build(kind: str, folder: Path, tokenizer: Any, work: Path) -> EngineDeployment:
    if kind.startswith("ctranslate2"):
        import ctranslate2

        quantization = kind.split("-", 1)[1]
        out = work / kind
        ctranslate2.converters.TransformersConverter(str(folder)).convert(
            str(out), quantization=quantization, force=True
        )
        return EngineDeployment(CTranslate2Engine(out, tokenizer, quantization), kind, [out])
    if kind.startswith("onnxruntime-genai"):
        precision = kind.rsplit("-", 1)[1]
        out = work / kind
        subprocess.run(
            [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(folder),
             "-o", str(out), "-p", precision, "-e", "cpu", "-c", str(work / "cache")],
            check=True, capture_output=True,
        )  # fmt: skip
        return EngineDeployment(OnnxGenAIEngine(out, tokenizer), kind, [out])
    raise ValueError(kind)


def main() -> None:
    from agentic_compression.cli.app import _quiet_libraries
    from agentic_compression.compression import CompressionContext, preset
    from agentic_compression.core.provenance import machine_summary
    from agentic_compression.evaluation.accuracy import AccuracyConfig, TaskSpec, evaluate_accuracy
    from agentic_compression.evaluation.latency import LatencyConfig, measure_latency
    from agentic_compression.evaluation.perplexity import PerplexityConfig, perplexity
    from agentic_compression.models import load_model
    from agentic_compression.models.loading import embedded_folder
    from agentic_compression.runtimes import runtime_for

    _quiet_libraries()
    import torch

    torch.set_num_threads(THREADS)
    kinds = sys.argv[1:] or [
        "torch-fp32", "llamacpp-Q8_0", "llamacpp-Q4_0", "ctranslate2-int8", "onnxruntime-genai-int8", "onnxruntime-genai-int4",
    ]  # fmt: skip
    load_before = os.getloadavg()
    base = load_model("smollm2-135m")
    folder = embedded_folder("smollm2-135m")
    accuracy = AccuracyConfig(
        tasks=(TaskSpec("arc_easy", metric="acc"), TaskSpec("hellaswag", metric="acc_norm")),
        data_dir=SHARED, limit=200, num_fewshot=0,
    )  # fmt: skip
    latency = LatencyConfig(prompt_tokens=128, new_tokens=32, warmup=1, repeats=5)
    windows = PerplexityConfig(seq_len=512, windows=16)
    rows: list[dict[str, Any]] = []
    machine = machine_summary()
    machine["loadavg_before"] = [round(x, 2) for x in load_before]
    with tempfile.TemporaryDirectory(prefix="bakeoff-") as tmp:
        work = Path(tmp)
        for kind in kinds:
            row: dict[str, Any] = {"runtime": kind}
            started = time.perf_counter()
            try:
                if kind.startswith(("llamacpp", "torch")):
                    name = kind.split("-", 1)[1].lower()
                    recipe = preset(name if kind.startswith("torch") else f"gguf-{name}")
                    (work / kind).mkdir()
                    deployment: Deployment = runtime_for(recipe.runtime).deploy(
                        base.fresh_copy(), base, recipe.runtime,
                        CompressionContext(base.tokenizer), work / kind,
                    )  # fmt: skip
                else:
                    deployment = build(kind, folder, base.tokenizer, work)
                row["convert_s"] = round(time.perf_counter() - started, 1)
                with deployment:
                    lat = measure_latency(deployment, latency)
                    row.update(
                        size_mb=round(deployment.size_stats().serialized_bytes / 1e6, 1),
                        perplexity=round(perplexity(deployment, windows).value, 4),
                        decode_ms_p50=round(lat.decode_ms_median, 2),
                        decode_ms_p90=round(lat.decode_ms_p90, 2),
                        tokens_per_s=round(lat.decode_tokens_per_s, 1),
                        prefill_ms_p50=round(lat.prefill_ms_median, 1),
                        accuracy={
                            m.task: round(m.value, 4)
                            for m in evaluate_accuracy(deployment, None, accuracy)
                        },
                    )
                row["status"] = "ok"
            except Exception as error:  # a runtime that fails is a row that says why
                row.update(status="failed", error=f"{type(error).__name__}: {str(error)[:300]}")
            row["seconds"] = round(time.perf_counter() - started, 1)
            print(json.dumps(row), flush=True)
            rows.append(row)
            machine["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
            _write(machine, rows)


def _write(machine: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    RESULTS.mkdir(exist_ok=True)
    openvino = (
        "OpenVINO (optimum-intel 2.2 + NNCF): not measured; optimum-intel 2.2 pulls transformers "
        "5.5.4 and torch 2.14.1, and beside this project's transformers 5.24 its import fails"
    )
    payload = {"machine": machine, "not_measured": [openvino], "rows": rows}
    (RESULTS / "cpu_runtime_bakeoff.json").write_text(json.dumps(payload, indent=2))
    lines = [
        "# Second CPU runtime: bake-off on the embedded SmolLM2-135M (measured)",
        "",
        f"Machine: {machine['cpu']}, {machine['cpu_count']} cores, {THREADS} threads everywhere. "
        f"Load average before/after: {machine['loadavg_before']} / {machine.get('loadavg_after')}.",
        "Perplexity: WikiText-2 test 16 x 512; latency: 128-token prompt, 32 decode steps, "
        "1 warm-up + 5 repeats; accuracy: first 200 examples, 0-shot, each runtime's own "
        "log-probabilities through lm-eval.",
        "",
        "| runtime | size MB | ppl | ARC-E | HS | decode p50 | p90 | tok/s | prefill ms | convert s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row["status"] != "ok":
            lines.append(f"| {row['runtime']} | failed: {row['error']} |")
            continue
        acc = row["accuracy"]
        lines.append(
            f"| {row['runtime']} | {row['size_mb']} | {row['perplexity']} | {acc.get('arc_easy')} "
            f"| {acc.get('hellaswag')} | {row['decode_ms_p50']} | {row['decode_ms_p90']} "
            f"| {row['tokens_per_s']} | {row['prefill_ms_p50']} | {row['convert_s']} |"
        )
    lines += ["", f"Not measured: {openvino}."]
    (RESULTS / "cpu_runtime_bakeoff.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
