"""Pick a planner by name or environment: ``offline`` (default), ``llm``, ``rules``, ``random``.

``make_planner(None, seed=0)`` reads ``AGENTIC_COMPRESSION_PLANNER``. The LLM planner is configured by:

- ``llm_base_url`` or ``AGENTIC_COMPRESSION_LLM_BASE_URL``: any OpenAI-compatible server (llama.cpp,
  vLLM, Ollama, LM Studio); ``OPENAI_API_KEY`` is sent if set;
- otherwise a model name (``llm_model`` or ``AGENTIC_COMPRESSION_LLM_MODEL``, optionally prefixed
  ``anthropic:`` or ``openai:``; ``claude-*`` means Anthropic) with ``ANTHROPIC_API_KEY`` or
  ``OPENAI_API_KEY``; with no model name, whichever of the two keys is set picks the provider.

When ``llm`` is asked for and nothing is configured, one warning line says so and the offline
planner is returned, named ``"offline (fallback from llm: ...)"`` so provenance records it. A
configured provider whose LangChain package is missing raises :class:`UserInputError` with the
install command (``pip install 'agentic-compression[llm]'``).

Example:
    >>> make_planner("random", seed=0).name
    'random'
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from agentic_compression.errors import UserInputError
from agentic_compression.planning.base import Planner
from agentic_compression.planning.llm import LLMPlanner
from agentic_compression.planning.optuna_planner import OptunaPlanner
from agentic_compression.planning.random_planner import RandomPlanner
from agentic_compression.planning.rules import RulesPlanner
from agentic_compression.planning.space import SearchSpace
from agentic_compression.redaction import redact_url

logger = logging.getLogger(__name__)

PLANNER_ENV = "AGENTIC_COMPRESSION_PLANNER"
LLM_MODEL_ENV = "AGENTIC_COMPRESSION_LLM_MODEL"
LLM_BASE_URL_ENV = "AGENTIC_COMPRESSION_LLM_BASE_URL"
PLANNER_NAMES = ("offline", "llm", "rules", "random")
DEFAULT_MODELS = {"anthropic": "claude-sonnet-4-5", "openai": "gpt-4.1-mini"}
_PACKAGES = {"anthropic": "langchain-anthropic", "openai": "langchain-openai"}


def make_planner(
    name: str | None,
    *,
    seed: int,
    llm_model: str | None = None,
    llm_base_url: str | None = None,
    chat_model: Any = None,
    space: SearchSpace | None = None,
) -> Planner:
    """The planner called ``name`` (or ``$AGENTIC_COMPRESSION_PLANNER``, else ``offline``).

    ``chat_model`` (a LangChain chat model) overrides the provider configuration for ``llm``;
    ``space`` defaults to :meth:`SearchSpace.for_this_machine`.
    """
    chosen = (name or os.environ.get(PLANNER_ENV) or "offline").strip().lower()
    if chosen not in PLANNER_NAMES:
        source = "" if name else f" (from ${PLANNER_ENV})"
        raise UserInputError(
            f"unknown planner {chosen!r}{source}; choose one of: {', '.join(PLANNER_NAMES)}"
        )
    if chosen == "rules":
        return RulesPlanner()
    space = space if space is not None else SearchSpace.for_this_machine()
    if chosen == "random":
        return RandomPlanner(seed=seed, space=space)
    offline = OptunaPlanner(seed=seed, space=space)
    if chosen == "offline":
        return offline
    label = "chat model"
    if chat_model is None:
        chat_model, label, missing = _chat_model(llm_model, llm_base_url, os.environ)
        if chat_model is None:
            logger.warning("LLM planner not configured (%s); using the offline planner", missing)
            offline.name = f"offline (fallback from llm: {missing})"
            return offline
    import torch

    note = (
        "A CUDA GPU is available."
        if torch.cuda.is_available()
        else "CPU only: float8_dynamic and the vllm runtime cannot run here."
    )
    if space.emulated:
        note += (
            f" This CPU runs {', '.join(space.emulated)} in software (no native instructions): "
            "their prompt and batch matmuls are emulated, so they take 3-4x longer to evaluate "
            "(single-token decode can still be faster)."
        )
    gguf = [q for q in space.quantizations if q.startswith("gguf-")]
    if gguf:
        note += (
            ' llama.cpp is installed: a recipe may add "runtime": {"name": "llamacpp", '
            '"quant": TYPE} (TYPE one of F16, BF16, Q8_0, Q6_K, Q5_K_M, Q5_0, Q5_1, Q4_K_M, '
            'Q4_0, Q4_1, IQ4_NL, IQ4_XS; optional "imatrix": true) to be exported to GGUF and '
            "measured in llama.cpp; such a recipe may prune or cast but not quantize in torch."
        )
    if any(q.startswith("vllm-") for q in space.quantizations):
        note += (
            ' vLLM is installed on this GPU: a recipe may add "runtime": {"name": "vllm", '
            '"scheme": SCHEME} (SCHEME one of none, W4A16, W8A8'
            + (", FP8" if "vllm-fp8" in space.quantizations else "")
            + ") to be quantized by llm-compressor and measured in vLLM; such a recipe may "
            "prune or cast but not quantize in torch."
        )
    return LLMPlanner(chat_model, fallback=offline, model_label=label, environment_note=note)


def _provider(model: str | None, env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(provider, model name without prefix) from an explicit model name or the keys set."""
    if model:
        prefix, _, rest = model.partition(":")
        if rest and prefix in _PACKAGES:
            return prefix, rest
        return ("anthropic" if model.startswith("claude") else "openai"), model
    if env.get("ANTHROPIC_API_KEY"):
        return "anthropic", None
    if env.get("OPENAI_API_KEY"):
        return "openai", None
    return None, None


def _chat_model(
    llm_model: str | None, llm_base_url: str | None, env: Mapping[str, str]
) -> tuple[Any, str, str]:
    """``(chat model or None, label, what is missing)``; imports the provider package lazily."""
    model = llm_model or env.get(LLM_MODEL_ENV)
    base_url = llm_base_url or env.get(LLM_BASE_URL_ENV)
    if base_url:
        chat_openai = _import("openai")
        name = model or "default"
        client = chat_openai(
            model=name,
            base_url=base_url,
            api_key=env.get("OPENAI_API_KEY") or "not-needed",
            max_retries=0,  # LLMPlanner retries with backoff itself
            timeout=120,
        )
        return client, f"openai-compatible {name} at {redact_url(base_url)}", ""
    provider, requested = _provider(model, env)
    if provider is None:
        return None, "", f"no ANTHROPIC_API_KEY, OPENAI_API_KEY or ${LLM_BASE_URL_ENV} set"
    key_var = f"{provider.upper()}_API_KEY"
    if not env.get(key_var):
        return None, "", f"model {model!r} needs {key_var}, which is not set"
    name = requested or DEFAULT_MODELS[provider]
    if provider == "anthropic":
        client = _import("anthropic")(model=name, api_key=env[key_var], max_retries=0, timeout=120)
    else:
        client = _import("openai")(model=name, api_key=env[key_var], max_retries=0, timeout=120)
    return client, f"{provider}:{name}", ""


def _import(provider: str) -> Any:
    try:
        if provider == "anthropic":
            from langchain_anthropic import ChatAnthropic

            return ChatAnthropic
        from langchain_openai import ChatOpenAI

        return ChatOpenAI
    except ImportError:
        raise UserInputError(
            f"the llm planner with {provider} needs {_PACKAGES[provider]}: "
            "pip install 'agentic-compression[llm]'"
        ) from None
