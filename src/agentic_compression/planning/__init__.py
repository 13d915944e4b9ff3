"""Planners propose compression recipes; they all implement :class:`Planner`."""

from agentic_compression.planning.base import Planner, Proposal, TrialOutcome

__all__ = ["Planner", "Proposal", "TrialOutcome"]
