"""Where the search goes after each decision point (typed routes; see ``graph.py``).

Example:
    >>> after_decision({"stop_reason": None, "pending": []})
    'plan'
    >>> after_plan({"stop_reason": "exhausted", "pending": []})
    'finish'
"""

from __future__ import annotations

from typing import Literal

from agentic_compression.workflow.state import SearchState


def after_decision(state: SearchState) -> Literal["plan", "evaluate", "finish"]:
    """Stop when a stop reason is set; else evaluate what is planned, or plan more."""
    if state.get("stop_reason"):
        return "finish"
    return "evaluate" if state.get("pending") else "plan"


def after_plan(state: SearchState) -> Literal["evaluate", "finish"]:
    """Evaluate the new proposals; a planner that proposed nothing has ended the search."""
    if state.get("stop_reason") or not state.get("pending"):
        return "finish"
    return "evaluate"
