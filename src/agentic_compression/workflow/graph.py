"""The search as a LangGraph ``StateGraph``: plan -> evaluate -> update Pareto -> refine or stop.

::

    START -> refine_or_stop --(stop)--> finish -> END
                 |  ^   \\--(nothing pending)--> plan --(nothing new)--> finish
                 |  |                            |
                 |  +---- update_pareto <---- evaluate  <--(proposals)--+
                 +--(pending)-----------------^

The planner, evaluator, results store and executor are bound here (closures); the run context (goal, budgets,
run folder) comes with each invocation as LangGraph's runtime context; the checkpointer is injected
at compile time. Run it with ``durability="sync"`` (as :func:`run_config` and the runner do): each
step's checkpoint is then on disk before the next step starts, which is what makes a SIGKILLed run
resumable without losing the last trial.

Example:
    >>> with make_checkpointer("sqlite:///runs/r1/checkpoint.sqlite") as saver:    # doctest: +SKIP
    ...     workflow = build_workflow(planner, evaluator, store, saver)
    ...     workflow.invoke(initial_state("r1"), run_config("r1", 8), context=context,
    ...                     durability="sync")
"""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from agentic_compression.planning.base import Planner
from agentic_compression.results.store import ResultsStore
from agentic_compression.workflow import nodes, routing
from agentic_compression.workflow.evaluator import Evaluator
from agentic_compression.workflow.executors import Executor
from agentic_compression.workflow.state import RunContext, SearchState

SearchWorkflow = CompiledStateGraph[SearchState, RunContext, SearchState, SearchState]


def build_workflow(
    planner: Planner,
    evaluator: Evaluator,
    store: ResultsStore,
    checkpointer: BaseCheckpointSaver[Any] | None,
    executor: Executor | None = None,
) -> SearchWorkflow:
    """Compile the search graph with its services bound and ``checkpointer`` injected;
    ``executor`` measures the candidates (default: one at a time in this process)."""

    def refine_or_stop(state: SearchState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        return nodes.refine_or_stop(state, runtime.context)

    def plan(state: SearchState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        return nodes.plan(state, runtime.context, planner, evaluator)

    def evaluate(state: SearchState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        return nodes.evaluate(state, runtime.context, evaluator, store, executor)

    def update_pareto(state: SearchState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        return nodes.update_pareto(state, runtime.context)

    def finish(state: SearchState) -> dict[str, Any]:
        return nodes.finish(state, store)

    graph = StateGraph(SearchState, context_schema=RunContext)
    graph.add_node("refine_or_stop", refine_or_stop)
    graph.add_node("plan", plan)
    graph.add_node("evaluate", evaluate)
    graph.add_node("update_pareto", update_pareto)
    graph.add_node("finish", finish)
    graph.add_edge(START, "refine_or_stop")
    graph.add_conditional_edges("refine_or_stop", routing.after_decision)
    graph.add_conditional_edges("plan", routing.after_plan)
    graph.add_edge("evaluate", "update_pareto")
    graph.add_edge("update_pareto", "refine_or_stop")
    graph.add_edge("finish", END)
    return graph.compile(checkpointer=checkpointer)


def run_config(run_id: str, max_trials: int) -> RunnableConfig:
    """The invocation config of a run: its thread (the run id) and a step limit that fits it.

    >>> run_config("r1", 8)["configurable"]
    {'thread_id': 'r1'}
    """
    # At most four steps per trial (decide, plan, evaluate, update) plus the finish.
    return {"configurable": {"thread_id": run_id}, "recursion_limit": 5 * max_trials + 20}
