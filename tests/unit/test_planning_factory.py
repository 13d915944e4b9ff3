"""make_planner: names, the environment switch, LLM provider configuration and its fallback."""

from __future__ import annotations

import logging
import sys
from types import ModuleType
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

from agentic_compression.errors import UserInputError
from agentic_compression.planning.factory import PLANNER_ENV, make_planner
from agentic_compression.planning.llm import LLMPlanner
from agentic_compression.planning.optuna_planner import OptunaPlanner
from agentic_compression.planning.random_planner import RandomPlanner
from agentic_compression.planning.rules import RulesPlanner
from agentic_compression.planning.space import SearchSpace

SPACE = SearchSpace()
_ENV_VARS = (
    PLANNER_ENV, "ANTHROPIC_API_KEY", "OPENAI_API_KEY",
    "AGENTIC_COMPRESSION_LLM_MODEL", "AGENTIC_COMPRESSION_LLM_BASE_URL",
)  # fmt: skip


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV_VARS:
        monkeypatch.delenv(name, raising=False)


class FakeChat:
    """Stands in for ChatOpenAI / ChatAnthropic: records its constructor arguments."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


def fake_provider(monkeypatch: pytest.MonkeyPatch, module: str, cls: str) -> None:
    fake = ModuleType(module)
    setattr(fake, cls, FakeChat)
    monkeypatch.setitem(sys.modules, module, fake)


def test_default_is_offline_and_env_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    planner = make_planner(None, seed=3, space=SPACE)
    assert isinstance(planner, OptunaPlanner) and planner.name == "offline" and planner.seed == 3
    monkeypatch.setenv(PLANNER_ENV, "rules")
    assert isinstance(make_planner(None, seed=0, space=SPACE), RulesPlanner)
    monkeypatch.setenv(PLANNER_ENV, " Random ")
    assert isinstance(make_planner(None, seed=0, space=SPACE), RandomPlanner)
    assert isinstance(make_planner("offline", seed=0, space=SPACE), OptunaPlanner)  # arg wins


def test_unknown_name_lists_the_valid_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(
        UserInputError, match="unknown planner 'bayes'; choose one of: offline, llm, rules, random"
    ):
        make_planner("bayes", seed=0)
    monkeypatch.setenv(PLANNER_ENV, "gpt")
    with pytest.raises(UserInputError, match=f"from \\${PLANNER_ENV}"):
        make_planner(None, seed=0)


def test_llm_without_configuration_falls_back_loudly(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="agentic_compression.planning.factory"):
        planner = make_planner("llm", seed=0, space=SPACE)
    assert isinstance(planner, OptunaPlanner)
    assert planner.name.startswith("offline (fallback from llm: no ANTHROPIC_API_KEY")
    assert len(caplog.records) == 1 and "using the offline planner" in caplog.text


def test_llm_model_without_its_key_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    planner = make_planner("llm", seed=0, llm_model="claude-sonnet-4-5", space=SPACE)
    assert (
        planner.name
        == "offline (fallback from llm: model 'claude-sonnet-4-5' needs ANTHROPIC_API_KEY, which is not set)"
    )


def test_given_chat_model_is_used() -> None:
    fake = GenericFakeChatModel(messages=iter([]))
    planner = make_planner("llm", seed=0, chat_model=fake, space=SPACE)
    assert isinstance(planner, LLMPlanner) and planner.chat_model is fake
    assert isinstance(planner.fallback, OptunaPlanner)
    assert (
        planner.environment_note == "CPU only: float8_dynamic and the vllm runtime cannot run here."
    )


def test_anthropic_key_picks_anthropic(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_provider(monkeypatch, "langchain_anthropic", "ChatAnthropic")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    planner = make_planner("llm", seed=0, space=SPACE)
    assert isinstance(planner, LLMPlanner) and planner.name == "llm (anthropic:claude-sonnet-4-5)"
    assert planner.chat_model.kwargs["api_key"] == "sk-ant-test"
    assert planner.chat_model.kwargs["max_retries"] == 0  # the planner retries itself


def test_model_prefix_and_env_model(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_provider(monkeypatch, "langchain_openai", "ChatOpenAI")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("AGENTIC_COMPRESSION_LLM_MODEL", "openai:gpt-4o")
    planner = make_planner("llm", seed=0, space=SPACE)
    assert planner.name == "llm (openai:gpt-4o)"
    assert isinstance(planner, LLMPlanner) and planner.chat_model.kwargs["model"] == "gpt-4o"


def test_base_url_means_openai_compatible_server(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_provider(monkeypatch, "langchain_openai", "ChatOpenAI")
    planner = make_planner(
        "llm", seed=0, llm_model="qwen2.5-7b", llm_base_url="http://127.0.0.1:8080/v1", space=SPACE
    )
    assert planner.name == "llm (openai-compatible qwen2.5-7b at http://127.0.0.1:8080/v1)"
    assert isinstance(planner, LLMPlanner)
    kwargs = planner.chat_model.kwargs
    assert kwargs["base_url"] == "http://127.0.0.1:8080/v1" and kwargs["api_key"] == "not-needed"


def test_missing_provider_package_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "langchain_anthropic", None)  # import fails
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    with pytest.raises(
        UserInputError, match=r"needs langchain-anthropic: pip install 'agentic-compression\[llm\]'"
    ):
        make_planner("llm", seed=0, space=SPACE)
