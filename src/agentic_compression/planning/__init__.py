"""Planners propose compression recipes; they all implement :class:`Planner`.

``make_planner`` picks one by name (offline, llm, rules, random) or ``AGENTIC_COMPRESSION_PLANNER``.
"""

from agentic_compression.planning.base import Planner, PlanningGoal, Proposal, TrialOutcome
from agentic_compression.planning.factory import PLANNER_NAMES, make_planner
from agentic_compression.planning.space import SearchSpace, SpacePoint

__all__ = [
    "PLANNER_NAMES",
    "Planner",
    "PlanningGoal",
    "Proposal",
    "SearchSpace",
    "SpacePoint",
    "TrialOutcome",
    "make_planner",
]
