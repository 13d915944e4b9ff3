"""The LLM planner with fake chat models at the provider boundary: parsing, retries, fallback."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from agentic_compression.compression.presets import preset
from agentic_compression.compression.recipe import Recipe
from agentic_compression.planning.base import PlanningGoal, TrialOutcome
from agentic_compression.planning.llm import (
    LLMPlanner,
    RetryPolicy,
    build_prompt,
    is_transient,
    parse_reply,
    retry_after_seconds,
)
from agentic_compression.planning.random_planner import RandomPlanner

FAST = RetryPolicy(max_call_attempts=3, base_delay_s=0.01, max_delay_s=1.0, max_format_attempts=3)
HISTORY = [
    TrialOutcome(0, preset("fp32"), "ok", {"accuracy": 0.49, "latency_ms": 37.0}),
    TrialOutcome(1, preset("int4-weight-only"), "failed", error="MethodUnavailableError: no CUDA"),
]


def reply(*recipes: dict[str, Any], reasoning: str = "nf4 shrinks memory 3x") -> str:
    return json.dumps({"reasoning": reasoning, "recipes": list(recipes)})


NF4 = {"name": "nf4", "steps": [{"method": "bnb_4bit", "quant_type": "nf4"}]}
WANDA_INT8 = {
    "name": "w30+int8",
    "steps": [{"method": "wanda", "sparsity": 0.3}, {"method": "int8_weight_only"}],
}
BF16 = {"name": "bf16", "steps": [{"method": "cast", "dtype": "bfloat16"}]}


class RateLimitError(Exception):
    """Shaped like openai/anthropic's: a status code and an HTTP response with headers."""

    status_code = 429

    def __init__(self, retry_after: str | None = None) -> None:
        super().__init__("rate limit exceeded")
        headers = {"retry-after": retry_after} if retry_after is not None else {}
        self.response = SimpleNamespace(status_code=429, headers=headers)


class AuthenticationError(Exception):
    status_code = 401


class ScriptedChatModel(BaseChatModel):
    """Replies (text) or raises (exceptions) in order; records the messages of every call."""

    script: list[Any]
    calls: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self.calls.append(list(messages))
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        usage = {"input_tokens": 1200, "output_tokens": 80, "total_tokens": 1280}
        message = AIMessage(content=item, usage_metadata=usage)
        return ChatResult(generations=[ChatGeneration(message=message)])


def planner(model: Any, sleeps: list[float] | None = None) -> LLMPlanner:
    record = sleeps if sleeps is not None else []
    return LLMPlanner(
        model,
        fallback=RandomPlanner(seed=0, name="offline"),
        model_label="fake",
        retry=FAST,
        sleep=record.append,
    )


def texts(messages: Sequence[BaseMessage]) -> str:
    return "\n".join(str(m.content) for m in messages)


def test_valid_reply_becomes_recipes_with_reasoning_and_usage() -> None:
    model = ScriptedChatModel(script=[reply(NF4, WANDA_INT8, BF16)], calls=[])
    proposals = planner(model).propose(HISTORY, PlanningGoal("edge", max_memory_bytes=2e8), 2)
    assert [p.recipe.label for p in proposals] == ["nf4", "w30+int8"]
    assert proposals[1].recipe.to_dict()["steps"][0] == {
        "method": "wanda", "sparsity": 0.3, "calibration_samples": 32, "calibration_seq_len": 256,
    }  # fmt: skip
    assert all(p.planner == "llm (fake)" for p in proposals)
    assert proposals[0].reasoning == "nf4 shrinks memory 3x"
    assert proposals[0].tool_calls == (
        "llm_call model=fake reply=1 input_tokens=1200 output_tokens=80",
    )
    prompt = texts(model.calls[0])
    for expected in ('"method": "bnb_4bit"', '"quant_type"', "edge", '"max_memory_bytes": 200000000.0',
                     "accuracy (maximize)", '"status": "failed"', "no CUDA", "Propose up to 2 NEW"):  # fmt: skip
        assert expected in prompt


def test_generic_fake_chat_model_works_too() -> None:
    fake = GenericFakeChatModel(messages=iter([AIMessage(content=f"```json\n{reply(NF4)}\n```")]))
    (proposal,) = planner(fake).propose([], PlanningGoal(), 3)
    assert proposal.recipe.label == "nf4"
    assert proposal.tool_calls == ("llm_call model=fake reply=1 usage not reported",)


def test_malformed_reply_is_fed_back_and_retried() -> None:
    model = ScriptedChatModel(script=["Sure! I suggest nf4.", reply(NF4)], calls=[])
    (proposal,) = planner(model).propose(HISTORY, PlanningGoal(), 1)
    assert proposal.recipe.label == "nf4" and proposal.planner == "llm (fake)"
    assert len(proposal.tool_calls) == 2
    second = model.calls[1]
    assert second[-2].content == "Sure! I suggest nf4."
    assert "could not be used: the reply contains no JSON object" in str(second[-1].content)


def test_invalid_recipes_and_repeats_are_malformed() -> None:
    gptq = {"name": "gptq", "steps": [{"method": "gptq", "bits": 4}]}
    model = ScriptedChatModel(script=[reply(gptq), reply({"name": "again", "steps": [{"method": "cast", "dtype": "float32"}]}), reply(BF16)], calls=[])  # fmt: skip
    (proposal,) = planner(model).propose(HISTORY, PlanningGoal(), 1)
    assert proposal.recipe.label == "bf16"
    assert "unknown compression method 'gptq'" in str(model.calls[1][-1].content)
    assert "already tried" in str(model.calls[2][-1].content)


def test_repeated_malformed_output_falls_back_to_offline(caplog: pytest.LogCaptureFixture) -> None:
    model = ScriptedChatModel(script=["no", '{"recipes": []}', '{"plan": "nf4"}'], calls=[])
    with caplog.at_level(logging.WARNING, logger="agentic_compression.planning.llm"):
        proposals = planner(model).propose(HISTORY, PlanningGoal(), 2)
    assert len(proposals) == 2 and len(model.calls) == 3
    reason = '3 unusable replies, last: the reply must be an object with a "recipes" list'
    assert proposals[0].planner == f"offline (fallback from llm: {reason})"
    assert proposals[0].reasoning.startswith(f"[fallback from llm (fake): {reason}] uniform random")
    assert len(proposals[0].tool_calls) == 3  # the tokens spent are still recorded
    assert len(caplog.records) == 1 and "offline planner proposes this batch" in caplog.text


def test_rate_limit_waits_retry_after_then_succeeds() -> None:
    sleeps: list[float] = []
    model = ScriptedChatModel(script=[RateLimitError(retry_after="0.5"), reply(NF4)], calls=[])
    (proposal,) = planner(model, sleeps).propose([], PlanningGoal(), 1)
    assert proposal.recipe.label == "nf4" and proposal.planner == "llm (fake)"
    assert sleeps == [0.5]


def test_transient_errors_back_off_exponentially_then_fall_back() -> None:
    sleeps: list[float] = []
    model = ScriptedChatModel(
        script=[RateLimitError(), TimeoutError("slow"), RateLimitError()], calls=[]
    )
    proposals = planner(model, sleeps).propose([], PlanningGoal(), 1)
    assert sleeps == [0.01, 0.02]  # attempts 1 and 2 wait; attempt 3 is the last
    assert proposals[0].planner.startswith("offline (fallback from llm: RateLimitError: rate limit")
    assert "(after 3 attempts)" in proposals[0].planner


def test_refused_call_falls_back_without_retrying() -> None:
    sleeps: list[float] = []
    model = ScriptedChatModel(script=[AuthenticationError("invalid x-api-key")], calls=[])
    (proposal,) = planner(model, sleeps).propose([], PlanningGoal(), 1)
    assert sleeps == [] and len(model.calls) == 1
    assert proposal.planner == "offline (fallback from llm: AuthenticationError: invalid x-api-key)"


def test_error_classification_and_retry_after() -> None:
    assert is_transient(RateLimitError()) and is_transient(ConnectionError())
    assert is_transient(type("InternalServerError", (Exception,), {"status_code": 503})())
    assert not is_transient(AuthenticationError()) and not is_transient(ValueError("bad"))
    assert retry_after_seconds(RateLimitError("3")) == 3.0
    assert retry_after_seconds(RateLimitError("Wed, 21 Oct 2015 07:28:00 GMT")) is None
    assert RetryPolicy(base_delay_s=2, max_delay_s=10).delay(4) == 10
    assert RetryPolicy().delay(1, retry_after_s=120) == 60.0


def test_parse_reply_is_an_allowlist() -> None:
    sneaky = {
        "name": "x",
        "steps": [{"method": "cast", "dtype": "bfloat16", "code": "__import__('os')"}],
    }
    with pytest.raises(ValueError, match="recipe 1 is invalid"):
        parse_reply(reply(sneaky), [], 1)
    with pytest.raises(ValueError, match="reasoning"):
        parse_reply(json.dumps({"recipes": [NF4]}), [], 1)
    reasoning, recipes = parse_reply("Here you go:\n" + reply(NF4, NF4, BF16) + "\nthanks", [], 5)
    assert reasoning == "nf4 shrinks memory 3x" and [r.label for r in recipes] == ["nf4", "bf16"]


def test_prompt_without_history() -> None:
    prompt = build_prompt(
        [], PlanningGoal(), 3, note="CPU only: float8_dynamic and the vllm runtime cannot run here."
    )
    assert "none yet" in prompt and "CPU only" in prompt and '"method": "wanda"' in prompt


def test_prompt_names_the_measured_front_and_each_trials_fidelity() -> None:
    values = {"memory_bytes": 1e8, "energy_kwh_per_1k_tokens": 1e-3, "co2_kg_per_1k_tokens": 4e-4}
    history = [
        TrialOutcome(0, preset("fp32"), "ok", {**values, "accuracy": 0.5, "latency_ms": 20.0}),
        TrialOutcome(1, preset("bf16"), "ok", {**values, "accuracy": 0.4, "latency_ms": 25.0}),
        TrialOutcome(
            2,
            preset("nf4"),
            "ok",
            {**values, "accuracy": 0.9, "latency_ms": 1.0},
            fidelity="screen",
        ),
    ]
    prompt = build_prompt(history, PlanningGoal(), 2)
    front = prompt.split("## Measured Pareto front")[1].split("\n")[1]
    assert json.loads(front) == [0]  # bf16 is beaten; the screened nf4 is not a front member
    assert '"fidelity": "screen"' in prompt and '"fidelity": "full"' in prompt


def test_the_planner_estimates_its_providers_co2_from_token_usage() -> None:
    from agentic_compression.planning.llm import estimated_llm_co2_kg
    from agentic_compression.workflow.nodes import planner_reported_co2_kg

    llm = planner(ScriptedChatModel(script=["not json", reply(NF4)], calls=[]))
    llm.propose(HISTORY, PlanningGoal(), 1)
    two_replies = 2 * estimated_llm_co2_kg(1200, 80)
    assert planner_reported_co2_kg(llm) == pytest.approx(two_replies) and two_replies > 0
    llm.chat_model.script.append(reply(BF16))  # type: ignore[attr-defined]
    llm.propose(HISTORY, PlanningGoal(), 1)
    assert planner_reported_co2_kg(llm) == pytest.approx(two_replies / 2)  # the last call only


def test_recipes_in_flight_are_in_the_prompt_and_never_proposed() -> None:
    in_flight = Recipe.from_dict(NF4)
    model = ScriptedChatModel(script=[reply(NF4, BF16)], calls=[])
    proposals = planner(model).propose(HISTORY, PlanningGoal(), 2, pending=[in_flight])
    assert [p.recipe.label for p in proposals] == ["bf16"]
    prompt = texts(model.calls[0])
    assert "## Being evaluated now" in prompt and '"bnb_4bit"' in prompt.split("Being evaluated")[1]
    with pytest.raises(ValueError, match="being evaluated"):
        parse_reply(reply(NF4), [], 1, pending=[in_flight])
