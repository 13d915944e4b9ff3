"""Runtimes that serve a compressed model, behind one interface (:class:`Runtime`, :class:`Deployment`).

``torch`` (PyTorch eager, always available) and ``llamacpp`` (GGUF in llama.cpp, with the
``llamacpp`` extra). A candidate's runtime is part of its recipe (:mod:`..core.runtime_config`).

Example:
    >>> sorted(RUNTIMES)
    ['llamacpp', 'torch']
"""

from __future__ import annotations

from agentic_compression.core.runtime_config import RuntimeConfig
from agentic_compression.errors import MethodUnavailableError
from agentic_compression.runtimes.base import ArtefactInfo, Deployment, GenerationTimes, Runtime

RUNTIMES = ("torch", "llamacpp")


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
    raise MethodUnavailableError(f"no runtime {config.name!r}; runtimes: {', '.join(RUNTIMES)}")


def installed_runtimes() -> tuple[str, ...]:
    """The runtimes this machine can run (torch always; llamacpp with its extra)."""
    from agentic_compression.runtimes import llamacpp_lib

    return ("torch", "llamacpp") if llamacpp_lib.is_installed() else ("torch",)


__all__ = [
    "RUNTIMES",
    "ArtefactInfo",
    "Deployment",
    "GenerationTimes",
    "Runtime",
    "installed_runtimes",
    "runtime_for",
]
