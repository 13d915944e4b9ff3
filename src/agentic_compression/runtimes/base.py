"""The runtime interface: deploy a compressed model into the runtime that serves it, then measure there.

A :class:`Runtime` turns the compressed in-memory model into its own artefact (PyTorch: the model as
it is; llama.cpp: a GGUF file) and loads it as a :class:`Deployment`. Every measurement is written
once, over the deployment's few primitives, so that all runtimes are measured the same way:

* perplexity: :meth:`Deployment.tokenize` + :meth:`Deployment.window_nll` on the same WikiText-2
  windows;
* latency: :meth:`Deployment.time_generation` (greedy, KV cache, prefill then one step per token);
* accuracy: :meth:`Deployment.lm_eval_model`, an lm-eval ``LM`` over the runtime's own
  log-likelihoods and generations;
* size: :meth:`Deployment.size_stats`, the bytes of the deployed files.

Example:
    >>> runtime = runtime_for(LlamaCppSettings(quant="Q4_K_M"))          # doctest: +SKIP
    >>> with runtime.deploy(model, base, context, workdir) as deployment:  # doctest: +SKIP
    ...     deployment.time_generation(deployment.tokenize("Hello")[:8], 4)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from agentic_compression.core.metrics import SizeStats
from agentic_compression.core.runtime_config import RuntimeConfig


@dataclass(frozen=True)
class GenerationTimes:
    """Milliseconds of one greedy generation: the prompt's forward pass, then each decode step."""

    prefill_ms: float
    decode_ms: tuple[float, ...]


@dataclass(frozen=True)
class ArtefactInfo:
    """What was deployed: files, their format, and facts read back from them."""

    runtime: str
    format: str
    files: tuple[Path, ...] = ()
    #: ggml type -> tensor count (llama.cpp), read from the written file.
    tensor_types: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    sha256: str | None = None
    threads: int | None = None


def artefact_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, or of a folder: over each file's relative path and SHA-256, in
    sorted order (so ``export`` can prove the artefact it writes is the one that was measured)."""
    import hashlib

    def of_file(file: Path) -> str:
        digest = hashlib.sha256()
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()

    if path.is_file():
        return of_file(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}\0{of_file(file)}\n".encode())
    return digest.hexdigest()


class Deployment(ABC):
    """A compressed model loaded in its runtime, ready to be measured. Close it when done."""

    info: ArtefactInfo

    @abstractmethod
    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` as the runtime tokenizes it (no special tokens added)."""

    @abstractmethod
    def window_nll(self, windows: Sequence[Sequence[int]]) -> tuple[float, int]:
        """Summed next-token negative log-likelihood over the windows, and tokens predicted."""

    @abstractmethod
    def time_generation(self, prompt: Sequence[int], new_tokens: int) -> GenerationTimes:
        """Greedy generation of ``new_tokens`` decode steps after the prompt, timed per step."""

    @abstractmethod
    def lm_eval_model(self, batch_size: int) -> Any:
        """An lm-eval ``LM`` that scores and generates with this deployment."""

    @abstractmethod
    def size_stats(self) -> SizeStats:
        """Bytes of the deployed artefact, parameters and achieved sparsity."""

    @property
    @abstractmethod
    def threads(self) -> int: ...

    @property
    @abstractmethod
    def device(self) -> str: ...

    def close(self) -> None:  # noqa: B027 - most runtimes hold nothing to free
        """Free the runtime's resources (files in the work folder are the caller's)."""

    def __enter__(self) -> Deployment:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


class HuggingFaceTokens:
    """Token ids from a Hugging Face tokenizer (``self.tokenizer``), for in-process engines that
    see only ids (ONNX Runtime GenAI, vLLM): the torch runtime's tokenization, so scores compare."""

    tokenizer: Any

    @property
    def bos(self) -> int:
        token = self.tokenizer.bos_token_id
        return int(token if token is not None else self.tokenizer.eos_token_id)

    def tokenize(self, text: str, *, add_special: bool = False) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=add_special).input_ids)

    def detokenize(self, tokens: list[int]) -> str:
        return str(self.tokenizer.decode(tokens))

    def is_end_of_generation(self, token: int) -> bool:
        return bool(token == self.tokenizer.eos_token_id)


class ScorerDeployment(Deployment):
    """A deployment over an in-process engine (a :class:`.scoring_lm.TokenScorer` whose
    ``generate`` returns ``prefill_ms`` and ``decode_ms``): llama.cpp, ONNX Runtime GenAI, vLLM.
    Perplexity, latency and lm-eval all go through the engine's own logits and decode calls."""

    def __init__(self, llm: Any, size: SizeStats, info: ArtefactInfo) -> None:
        self.llm = llm
        self._size = size
        self.info = info

    @property
    def threads(self) -> int:
        return self.info.threads or 1

    @property
    def device(self) -> str:
        return "cpu"

    def tokenize(self, text: str) -> list[int]:
        return list(self.llm.tokenize(text))

    def window_nll(self, windows: Sequence[Sequence[int]]) -> tuple[float, int]:
        total, predicted = 0.0, 0
        for window in windows:
            logprobs, _ = self.llm.next_token_logprobs(list(window))
            total -= float(logprobs.sum())
            predicted += len(logprobs)
        return total, predicted

    def time_generation(self, prompt: Sequence[int], new_tokens: int) -> GenerationTimes:
        # new_tokens + 1 generated tokens = new_tokens decode steps after the prefill, as in torch.
        timing = self.llm.generate(list(prompt), new_tokens + 1, stop_at_eog=False)
        return GenerationTimes(timing.prefill_ms, tuple(timing.decode_ms))

    def lm_eval_model(self, batch_size: int) -> Any:
        from agentic_compression.runtimes.scoring_lm import ScoringLM

        return ScoringLM(self.llm, batch_size)

    def size_stats(self) -> SizeStats:
        return self._size

    def close(self) -> None:
        close = getattr(self.llm, "close", None)
        if close is not None:
            close()


class Runtime(ABC):
    """One serving runtime: how to deploy a compressed model into it and what it can take."""

    name: str

    @abstractmethod
    def deploy(
        self, model: Any, base: Any, config: RuntimeConfig, context: Any, workdir: Path
    ) -> Deployment:
        """Export ``model`` (compressed in place from ``base``) and load it; files go to ``workdir``."""

    @abstractmethod
    def write_artefact(self, deployment: Deployment, output: Path) -> list[Path]:
        """Copy the deployable files of ``deployment`` to ``output``; the paths written."""

    @abstractmethod
    def serve_command(self, files: Sequence[Path], config: RuntimeConfig) -> str:
        """The command a user runs to serve the written artefact."""
