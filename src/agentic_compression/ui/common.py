"""Helpers the pages share: the configuration, one-line errors, background-job feedback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from agentic_compression.errors import UserInputError
from agentic_compression.ui.data import UiConfig


def config() -> UiConfig:
    return UiConfig.from_env()


def guarded(action: Callable[[], Any]) -> Any:
    """Run ``action``; a user mistake or a missing run becomes a one-line error, never a traceback."""
    try:
        return action()
    except (UserInputError, ValueError, KeyError, FileNotFoundError) as error:
        st.error(str(error).strip("'\""))
        return None


def run_picker(runs: list[dict[str, Any]], key: str, prefer_running: bool = False) -> str | None:
    """A select box of run ids (the newest, or the newest running one, first)."""
    if not runs:
        st.info("No runs yet: launch one on the Runs page (or with `agentic-compress run`).")
        return None
    ids = [r["run_id"] for r in runs]
    if prefer_running:
        running = [r["run_id"] for r in runs if r["status"] == "running"]
        ids = running + [i for i in ids if i not in running]
    return st.selectbox("Run", ids, key=key)
