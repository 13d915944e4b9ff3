"""The search loop as a LangGraph graph: plan -> evaluate -> update Pareto -> refine or stop.

Public API: :func:`build_workflow` (graph.py), :func:`make_checkpointer` (checkpointer.py),
:class:`SearchSettings` and :func:`run_search` (runner.py), :class:`Evaluator` and
:class:`CandidateEvaluator` (evaluator.py), and the state types (state.py). Importing this package
imports no model library; those load when a run starts.
"""

from agentic_compression.workflow.checkpointer import make_checkpointer
from agentic_compression.workflow.evaluator import CandidateEvaluator, Evaluator
from agentic_compression.workflow.graph import build_workflow, run_config
from agentic_compression.workflow.runner import SearchSettings, run_search
from agentic_compression.workflow.state import Budgets, RunContext, SearchState, initial_state

__all__ = [
    "Budgets",
    "CandidateEvaluator",
    "Evaluator",
    "RunContext",
    "SearchSettings",
    "SearchState",
    "build_workflow",
    "initial_state",
    "make_checkpointer",
    "run_config",
    "run_search",
]
