"""Runtimes that serve a compressed model, behind one interface (:class:`Runtime`, :class:`Deployment`).

``torch`` (PyTorch eager, always available; on a CUDA GPU with torchao's CUDA kernels),
``llamacpp`` (GGUF in llama.cpp, with the ``llamacpp`` extra), ``onnxruntime`` (ONNX Runtime GenAI
on the CPU, with the ``onnxruntime`` extra) and ``vllm`` (a CUDA GPU, with the ``vllm`` extra in its
own environment). A candidate's runtime is part of its recipe (:mod:`..core.runtime_config`).

Example:
    >>> sorted(RUNTIMES)
    ['llamacpp', 'onnxruntime', 'torch', 'vllm']
"""

from __future__ import annotations

from agentic_compression.core.runtime_config import RuntimeConfig
from agentic_compression.errors import MethodUnavailableError
from agentic_compression.runtimes.base import ArtefactInfo, Deployment, GenerationTimes, Runtime

RUNTIMES = ("torch", "llamacpp", "onnxruntime", "vllm")


def runtime_for(config: RuntimeConfig) -> Runtime:
    """The runtime that serves ``config``; raises :class:`MethodUnavailableError` if not installed."""
    if config.name == "torch":
        from agentic_compression.runtimes.torch_eager import TorchEagerRuntime

        return TorchEagerRuntime()
    if config.name == "llamacpp":
        from agentic_compression.runtimes import llamacpp_lib

        if not llamacpp_lib.is_installed():
            raise MethodUnavailableError(
                f"the llamacpp runtime is not installed: {llamacpp_lib.INSTALL_HINT}"
            )
        from agentic_compression.runtimes.llamacpp import LlamaCppRuntime

        return LlamaCppRuntime()
    if config.name == "onnxruntime":
        from agentic_compression.runtimes import ort_genai

        ort_genai.require()
        return ort_genai.OrtGenAIRuntime()
    if config.name == "vllm":
        from agentic_compression.runtimes.vllm_runtime import VllmRuntime, require_vllm

        require_vllm()
        return VllmRuntime()
    raise MethodUnavailableError(f"no runtime {config.name!r}; runtimes: {', '.join(RUNTIMES)}")


def installed_runtimes() -> tuple[str, ...]:
    """The runtimes this machine can run (torch always; the others with their extras and, for
    vllm, a CUDA GPU)."""
    from agentic_compression.runtimes import llamacpp_lib, ort_genai
    from agentic_compression.runtimes.vllm_runtime import require_vllm

    found = ["torch"]
    if llamacpp_lib.is_installed():
        found.append("llamacpp")
    if ort_genai.is_installed():
        found.append("onnxruntime")
    try:
        require_vllm()
        found.append("vllm")
    except MethodUnavailableError:
        pass
    return tuple(found)


__all__ = [
    "RUNTIMES",
    "ArtefactInfo",
    "Deployment",
    "GenerationTimes",
    "Runtime",
    "installed_runtimes",
    "runtime_for",
]
