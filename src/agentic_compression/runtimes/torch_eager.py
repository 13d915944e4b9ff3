"""PyTorch eager: the compressed model served as it is, in memory, on the process's device.

This is the path every candidate took before runtimes existed: lm-eval's own ``HFLM`` over the
in-memory model for accuracy, batched forward passes for perplexity, a KV-cached greedy loop for
latency, and ``torch.save(state_dict)`` bytes for size.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentic_compression.core.metrics import SizeStats
from agentic_compression.core.runtime_config import RuntimeConfig
from agentic_compression.runtimes.base import ArtefactInfo, Deployment, GenerationTimes, Runtime

#: Windows per forward pass when measuring perplexity (keeps 135M-class models in a few hundred MB).
NLL_BATCH = 4


class TorchDeployment(Deployment):
    def __init__(self, model: Any, tokenizer: Any) -> None:
        import torch

        from agentic_compression.evaluation.footprint import size_stats

        self.model = model
        self.tokenizer = tokenizer
        # Measured right after compression, before any forward pass: some kernels rewrite their
        # packed weights on first use (bitsandbytes 4-bit scales on some CPUs).
        self._size = size_stats(model)
        self.info = ArtefactInfo(
            runtime="torch", format="in-memory PyTorch model", threads=torch.get_num_threads()
        )

    @property
    def threads(self) -> int:
        import torch

        return torch.get_num_threads()

    @property
    def device(self) -> str:
        return str(next(self.model.parameters()).device)

    def tokenize(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False).input_ids)

    def window_nll(self, windows: Sequence[Sequence[int]]) -> tuple[float, int]:
        import torch

        device = next(self.model.parameters()).device
        total, predicted = 0.0, 0
        with torch.inference_mode():
            for start in range(0, len(windows), NLL_BATCH):
                batch = torch.tensor(windows[start : start + NLL_BATCH], device=device)
                logits = self.model(batch, use_cache=False).logits.float()
                total += float(
                    torch.nn.functional.cross_entropy(
                        logits[:, :-1].reshape(-1, logits.shape[-1]),
                        batch[:, 1:].reshape(-1),
                        reduction="sum",
                    )
                )
                predicted += batch[:, 1:].numel()
        return total, predicted

    def time_generation(self, prompt: Sequence[int], new_tokens: int) -> GenerationTimes:
        import torch

        device = next(self.model.parameters()).device
        synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        ids = torch.tensor([list(prompt)], device=device)
        steps = []
        with torch.inference_mode():
            synchronize()
            started = time.perf_counter()
            out = self.model(ids, use_cache=True)
            synchronize()
            prefill = (time.perf_counter() - started) * 1000
            past = out.past_key_values
            token = out.logits[:, -1:].argmax(-1)
            for _ in range(new_tokens):
                started = time.perf_counter()
                out = self.model(token, past_key_values=past, use_cache=True)
                token = out.logits[:, -1:].argmax(-1)
                synchronize()
                steps.append((time.perf_counter() - started) * 1000)
                past = out.past_key_values
        return GenerationTimes(prefill, tuple(steps))

    def lm_eval_model(self, batch_size: int) -> Any:
        from lm_eval.models.huggingface import HFLM

        return HFLM(pretrained=self.model, tokenizer=self.tokenizer, batch_size=batch_size)

    def size_stats(self) -> SizeStats:
        return self._size


class TorchEagerRuntime(Runtime):
    name = "torch"

    def deploy(
        self, model: Any, base: Any, config: RuntimeConfig, context: Any, workdir: Path
    ) -> Deployment:
        return TorchDeployment(model, base.tokenizer)

    def write_artefact(self, deployment: Deployment, output: Path) -> list[Path]:
        assert isinstance(deployment, TorchDeployment)
        output.mkdir(parents=True, exist_ok=True)
        deployment.model.save_pretrained(output)
        deployment.tokenizer.save_pretrained(output)
        return sorted(p for p in output.iterdir() if p.is_file())

    def serve_command(self, files: Sequence[Path], config: RuntimeConfig) -> str:
        folder = shlex.quote(str(files[0].parent)) if files else "DIR"
        return (
            'python -c "from transformers import pipeline; '
            f"print(pipeline('text-generation', model={folder!r})('Hello')[0])\""
        )
