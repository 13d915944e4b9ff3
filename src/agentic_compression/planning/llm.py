"""The LLM planner: a LangChain chat model proposes recipes as JSON, parsed through the allowlist.

The prompt holds the method catalogue (each registered method's summary and JSON schema), the goal
and its constraints, the objectives with their directions, and every trial so far (recipe, status,
objective values). The model must answer with one JSON object
``{"reasoning": str, "recipes": [{"name": str, "steps": [{"method": ..., ...}]}]}``. Recipes are
built with :meth:`Recipe.from_dict` (registered methods and validated parameters only; nothing is
evaluated or imported) and recipes already tried are dropped.

Resilience, all bounded:

- a provider call that hits a rate limit (HTTP 429 / ``RateLimitError``) or a transient error
  (timeouts, connection errors, 5xx) is retried with exponential backoff, waiting ``Retry-After``
  when the provider sends it;
- a reply that cannot be used (not JSON, a bad recipe, nothing new) is sent back with the error and
  the model asked again, up to ``max_format_attempts`` replies;
- if either budget runs out, or the provider refuses (bad key, bad request), that call is served by
  the offline planner: one warning line is logged and the proposals say so in ``planner``
  (``"offline (fallback from llm: <reason>)"``) and in their reasoning.

Token usage of each reply (``usage_metadata``) is recorded in ``Proposal.tool_calls``.

Example:
    >>> planner = LLMPlanner(chat_model, fallback=OptunaPlanner(seed=0), model_label="claude")  # doctest: +SKIP
    >>> planner.propose(history, PlanningGoal("edge deployment"), count=2)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agentic_compression.compression.recipe import Recipe
from agentic_compression.compression.registry import registered_methods
from agentic_compression.core.pareto import DEFAULT_OBJECTIVES
from agentic_compression.errors import UserInputError
from agentic_compression.planning.base import (
    Planner,
    PlanningGoal,
    Proposal,
    TrialOutcome,
    taken_hashes,
)
from agentic_compression.redaction import scrub

logger = logging.getLogger(__name__)

_TRANSIENT_NAMES = (
    "APIConnectionError",
    "APITimeoutError",
    "InternalServerError",
    "ServiceUnavailableError",
)

SYSTEM_PROMPT = (
    "You are the planner of a search for compression recipes for a causal language model. Every "
    "recipe you propose is applied to the model for real and measured (accuracy, decode latency, "
    "serialized size, energy and CO2 per 1k generated tokens). Use the measurements so far to "
    "propose recipes that improve the Pareto front of the objectives while meeting the constraints. "
    "Answer with one JSON object and nothing else."
)


class MalformedReplyError(ValueError):
    """The model's reply cannot be turned into new, valid recipes; the message says why."""


class LLMUnavailableError(RuntimeError):
    """The provider could not be reached or refused the call after the allowed retries."""


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds on provider retries and on replies that cannot be used.

    Example:
        >>> RetryPolicy(max_call_attempts=3, base_delay_s=0.5).delay(attempt=3)
        2.0
    """

    max_call_attempts: int = 5
    base_delay_s: float = 2.0
    max_delay_s: float = 60.0
    max_format_attempts: int = 3

    def delay(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``Retry-After`` wins when given)."""
        if retry_after_s is not None:
            return min(max(retry_after_s, 0.0), self.max_delay_s)
        return min(self.base_delay_s * 2 ** (attempt - 1), self.max_delay_s)


# ----------------------------------------------------------------------------- errors


def _status_code(error: BaseException) -> int | None:
    code = getattr(error, "status_code", None)
    if code is None:
        code = getattr(getattr(error, "response", None), "status_code", None)
    return code if isinstance(code, int) else None


def is_rate_limit(error: BaseException) -> bool:
    """A provider's rate-limit error (OpenAI and Anthropic both call it ``RateLimitError``)."""
    return _status_code(error) == 429 or type(error).__name__ == "RateLimitError"


def is_transient(error: BaseException) -> bool:
    """Worth retrying: rate limits, timeouts, dropped connections, server-side errors."""
    code = _status_code(error)
    return (
        is_rate_limit(error)
        or isinstance(error, TimeoutError | ConnectionError)
        or type(error).__name__ in _TRANSIENT_NAMES
        or (code is not None and (code >= 500 or code == 408))
    )


def retry_after_seconds(error: BaseException) -> float | None:
    """The ``Retry-After`` header of the error's HTTP response, in seconds, if it has one."""
    headers = getattr(getattr(error, "response", None), "headers", None)
    if headers is None:
        return None
    value = headers.get("retry-after") or headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None  # an HTTP date: use the backoff instead


# ----------------------------------------------------------------------------- prompt


def method_catalogue() -> list[dict[str, Any]]:
    """Every registered method with its family, summary, parameter JSON schema and the runtimes
    that can serve its output (from the registry)."""
    return [
        {
            "method": name,
            "family": spec.config_cls.family,
            "summary": spec.config_cls.summary,
            "quantizes_weights": spec.config_cls.quantizes_weights,
            "runtimes": list(spec.config_cls.runtimes),
            "parameters": spec.config_cls.model_json_schema().get("properties", {}),
        }
        for name, spec in registered_methods().items()
    ]


def runtime_catalogue() -> list[dict[str, Any]]:
    """Every runtime with its settings' JSON schema and whether it is installed here."""
    from agentic_compression.core.runtime_config import RUNTIME_CONFIGS
    from agentic_compression.runtimes import installed_runtimes

    installed = installed_runtimes()
    return [
        {
            "runtime": name,
            "installed": name in installed,
            "settings": {
                key: value
                for key, value in cls.model_json_schema().get("properties", {}).items()
                if key != "name"
            },
        }
        for name, cls in RUNTIME_CONFIGS.items()
    ]


def _trial_line(outcome: TrialOutcome) -> dict[str, Any]:
    line: dict[str, Any] = {
        "trial": outcome.number,
        "recipe": outcome.recipe.to_dict(),
        "status": outcome.status,
    }
    if outcome.status == "ok":
        line["objectives"] = {k: float(f"{v:.6g}") for k, v in outcome.objectives.items()}
        line["feasible"] = outcome.feasible
        line["fidelity"] = outcome.fidelity
    if outcome.error:
        line["error"] = outcome.error[:300]
    return line


def front_trials(history: Sequence[TrialOutcome], goal: PlanningGoal) -> list[int]:
    """Numbers of the trials on the feasible full-fidelity Pareto front of ``history``.

    >>> from agentic_compression.compression.recipe import Recipe
    >>> a = TrialOutcome(0, Recipe.from_steps([]), "ok", {"accuracy": 0.5, "latency_ms": 9.0})
    >>> b = TrialOutcome(1, Recipe.from_steps([]), "ok", {"accuracy": 0.4, "latency_ms": 10.0})
    >>> front_trials([a, b], PlanningGoal())
    [0]
    """
    from agentic_compression.core.pareto import Point, pareto_front

    measured = [o for o in history if o.status == "ok" and o.feasible and o.fidelity == "full"]
    names = [
        objective
        for objective in DEFAULT_OBJECTIVES
        if measured and all(objective.name in o.objectives for o in measured)
    ]
    if not names:
        return []
    points = [Point(str(o.number), dict(o.objectives)) for o in measured]
    return [int(p.id) for p in pareto_front(points, names)]


def build_prompt(
    history: Sequence[TrialOutcome],
    goal: PlanningGoal,
    count: int,
    note: str | None = None,
    pending: Sequence[Recipe] = (),
) -> str:
    """The user message: catalogue, goal, objectives, history and the reply format."""
    constraints = {
        "min_accuracy": goal.accuracy_threshold,
        "max_memory_bytes": goal.max_memory_bytes,
        "max_latency_ms": goal.max_latency_ms,
    }
    sections = [
        "## Compression methods (a recipe is an ordered list of steps; pruning, recovery training "
        "and casts come first, then at most one step with quantizes_weights=true, last; a recipe "
        "may name the runtime that serves it, and only steps listing that runtime may precede it)",
        json.dumps(method_catalogue(), indent=1),
        '## Runtimes (a recipe\'s optional "runtime" object: name plus settings; default torch)\n'
        + json.dumps(runtime_catalogue(), indent=1),
        f"## Goal\n{goal.objective}",
        "## Constraints (null = none)\n"
        + json.dumps({k: v for k, v in constraints.items()}, indent=1),
        "## Objectives\n" + ", ".join(f"{o.name} ({o.direction})" for o in DEFAULT_OBJECTIVES),
        "## Trials so far (fidelity screen: measured on a quarter of the examples with one "
        "latency repeat, a rough estimate; full: the real measurement)\n"
        + ("\n".join(json.dumps(_trial_line(o)) for o in history) or "none yet"),
        "## Measured Pareto front (feasible full-fidelity trials no other trial beats within "
        "measurement noise)\n" + json.dumps(front_trials(history, goal)),
    ]
    if pending:
        sections.append(
            "## Being evaluated now (results not in yet; do not propose these again)\n"
            + "\n".join(json.dumps(r.to_dict()) for r in pending)
        )
    if note:
        sections.append(f"## Environment\n{note}")
    sections.append(
        f"## Your task\nPropose up to {count} NEW recipes (never one already tried). Reply with only "
        'this JSON object: {"reasoning": "<why these recipes, from the measurements>", '
        '"recipes": [{"name": "<short readable name>", "steps": [{"method": "<method>", '
        '"<parameter>": <value>}], "runtime": {"name": "<runtime>", "<setting>": <value>}}]} '
        '("runtime" may be left out: PyTorch eager)'
    )
    return "\n\n".join(sections)


def _json_object(text: str) -> Any:
    """The JSON object in ``text`` (code fences and prose around it are tolerated)."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise MalformedReplyError("the reply contains no JSON object")
    try:
        return json.loads(text[start : end + 1])
    except json.JSONDecodeError as error:
        raise MalformedReplyError(f"the reply is not valid JSON: {error}") from None


def parse_reply(
    text: str, history: Sequence[TrialOutcome], count: int, pending: Sequence[Recipe] = ()
) -> tuple[str, list[Recipe]]:
    """``(reasoning, new recipes)`` from a reply; :class:`MalformedReplyError` says what is wrong.

    >>> reply = '{"reasoning": "int8 keeps accuracy", "recipes": [{"name": "int8", "steps": [{"method": "int8_weight_only"}]}]}'
    >>> parse_reply(reply, [], count=2)[1][0].label
    'int8'
    """
    data = _json_object(text)
    if not isinstance(data, dict) or not isinstance(data.get("recipes"), list):
        raise MalformedReplyError('the reply must be an object with a "recipes" list')
    reasoning = data.get("reasoning")
    if not isinstance(reasoning, str) or not reasoning.strip():
        raise MalformedReplyError('the reply must have a non-empty "reasoning" string')
    tried = taken_hashes(history, pending)
    recipes: list[Recipe] = []
    for index, item in enumerate(data["recipes"], start=1):
        try:
            recipe = Recipe.from_dict(item)
        except UserInputError as error:
            raise MalformedReplyError(f"recipe {index} is invalid: {error}") from None
        if recipe.hash not in tried:
            tried.add(recipe.hash)
            recipes.append(recipe)
    if not recipes:
        raise MalformedReplyError(
            "every proposed recipe was already tried or is being evaluated (or none was given)"
        )
    return reasoning.strip(), recipes[:count]


def _text(response: Any) -> str:
    content = getattr(response, "content", response)
    if isinstance(content, list):  # content blocks (Anthropic): keep the text ones
        parts = [b.get("text", "") if isinstance(b, dict) else str(b) for b in content]
        return "".join(parts)
    return str(content)


#: Estimated energy of a hosted LLM per 1,000 tokens (Wh), for the ledger's planner share, which
#: no meter here can see. Epoch AI ("How much energy does ChatGPT use?", 2025) estimates a typical
#: GPT-4o query (about 500 output tokens) at about 0.3 Wh, so about 0.6 Wh per 1k output tokens;
#: input tokens are counted at a tenth of that (an assumption: prefill is batched and cheaper).
LLM_WH_PER_1K_OUTPUT_TOKENS = 0.6
LLM_WH_PER_1K_INPUT_TOKENS = 0.06
#: The provider's grid is unknown: the world average (IEA, about 480 gCO2/kWh in 2023).
LLM_GRID_G_CO2_PER_KWH = 480.0


def estimated_llm_co2_kg(input_tokens: int, output_tokens: int) -> float:
    """An estimate (not a measurement) of a hosted LLM's CO2 for a call's token usage.

    >>> round(estimated_llm_co2_kg(0, 1000) * 1000, 3)  # grams for 1k output tokens
    0.288
    """
    wh = (
        input_tokens / 1000 * LLM_WH_PER_1K_INPUT_TOKENS
        + output_tokens / 1000 * LLM_WH_PER_1K_OUTPUT_TOKENS
    )
    return wh / 1000 * LLM_GRID_G_CO2_PER_KWH / 1000


def _tokens(response: Any) -> tuple[int, int]:
    usage = getattr(response, "usage_metadata", None) or {}
    return int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)


def _usage(response: Any, attempt: int, label: str) -> str:
    usage = getattr(response, "usage_metadata", None) or {}
    tokens = (
        f"input_tokens={usage.get('input_tokens')} output_tokens={usage.get('output_tokens')}"
        if usage
        else "usage not reported"
    )
    return f"llm_call model={label} reply={attempt} {tokens}"


# ----------------------------------------------------------------------------- planner


class LLMPlanner(Planner):
    """Asks a LangChain chat model for recipes; falls back to ``fallback`` for a call it cannot serve.

    ``chat_model`` is any LangChain ``BaseChatModel`` (ChatAnthropic, ChatOpenAI, a local
    OpenAI-compatible server, or a fake in tests); build one with ``planning.factory.make_planner``.

    Example:
        >>> from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
        >>> from langchain_core.messages import AIMessage
        >>> from agentic_compression.planning.random_planner import RandomPlanner
        >>> reply = ('{"reasoning": "start from the baseline", "recipes": [{"name": "bf16", '
        ...          '"steps": [{"method": "cast", "dtype": "bfloat16"}]}]}')
        >>> fake = GenericFakeChatModel(messages=iter([AIMessage(content=reply)]))
        >>> planner = LLMPlanner(fake, fallback=RandomPlanner(seed=0), model_label="fake")
        >>> proposal = planner.propose([], PlanningGoal(), count=1)[0]
        >>> proposal.recipe.label, proposal.planner, proposal.reasoning
        ('bf16', 'llm (fake)', 'start from the baseline')
    """

    def __init__(
        self,
        chat_model: Any,
        *,
        fallback: Planner,
        model_label: str = "chat model",
        retry: RetryPolicy | None = None,
        environment_note: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.chat_model = chat_model
        self.fallback = fallback
        self.retry = retry if retry is not None else RetryPolicy()
        self.environment_note = environment_note
        self._sleep = sleep
        self.model_label = scrub(model_label)
        self.name = f"llm ({self.model_label})"
        self._last_co2_kg = 0.0

    def last_call_co2_kg_estimate(self) -> float:
        """The estimated CO2 of the last ``propose``'s provider calls, from their token usage
        (:func:`estimated_llm_co2_kg`; 0 when the provider reports no usage)."""
        return self._last_co2_kg

    def propose(
        self,
        history: Sequence[TrialOutcome],
        goal: PlanningGoal,
        count: int,
        pending: Sequence[Recipe] = (),
    ) -> list[Proposal]:
        if count <= 0:
            return []
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

        messages: list[Any] = [
            SystemMessage(content=SYSTEM_PROMPT),
            HumanMessage(
                content=build_prompt(history, goal, count, self.environment_note, pending)
            ),
        ]
        calls: list[str] = []
        problem = ""
        self._last_co2_kg = 0.0
        for attempt in range(1, self.retry.max_format_attempts + 1):
            try:
                response = self._invoke(messages)
            except LLMUnavailableError as error:
                return self._fall_back(history, goal, count, str(error), calls, pending)
            calls.append(_usage(response, attempt, self.model_label))
            self._last_co2_kg += estimated_llm_co2_kg(*_tokens(response))
            text = _text(response)
            try:
                reasoning, recipes = parse_reply(text, history, count, pending)
            except MalformedReplyError as error:
                problem = str(error)
                messages += [
                    AIMessage(content=text),
                    HumanMessage(
                        content=f"That reply could not be used: {problem}. Reply again with only "
                        "the JSON object, using only the listed methods and parameters."
                    ),
                ]
                continue
            return [Proposal(r, self.name, reasoning, tuple(calls)) for r in recipes]
        reason = f"{self.retry.max_format_attempts} unusable replies, last: {problem}"
        return self._fall_back(history, goal, count, reason, calls, pending)

    def _invoke(self, messages: list[Any]) -> Any:
        """One chat call, retried with backoff on rate limits and transient errors."""
        for attempt in range(1, self.retry.max_call_attempts + 1):
            try:
                return self.chat_model.invoke(messages)
            except Exception as error:  # providers share no base class; classified below
                summary = f"{type(error).__name__}: {str(error)[:200]}"
                if not is_transient(error):
                    raise LLMUnavailableError(summary) from error
                if attempt == self.retry.max_call_attempts:
                    raise LLMUnavailableError(f"{summary} (after {attempt} attempts)") from error
                wait = self.retry.delay(attempt, retry_after_seconds(error))
                kind = "rate limited" if is_rate_limit(error) else "transient error"
                logger.warning("LLM planner %s (%s); retrying in %.1f s", kind, summary, wait)
                self._sleep(wait)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _fall_back(
        self,
        history: Sequence[TrialOutcome],
        goal: PlanningGoal,
        count: int,
        reason: str,
        calls: list[str],
        pending: Sequence[Recipe] = (),
    ) -> list[Proposal]:
        reason = scrub(" ".join(reason.split()))[:300]
        logger.warning(
            "LLM planner unavailable (%s); the offline planner proposes this batch", reason
        )
        planner = f"{self.fallback.name} (fallback from llm: {reason})"
        return [
            Proposal(
                p.recipe,
                planner,
                f"[fallback from {self.name}: {reason}] {p.reasoning}",
                tuple(calls) + p.tool_calls,
            )
            for p in self.fallback.propose(history, goal, count, pending)
        ]
