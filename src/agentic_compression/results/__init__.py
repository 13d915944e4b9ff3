"""What a search measured: the results store (SQLite or Postgres), the frontier analysis and the
exports (JSON, CSV, Pareto plots). Kept apart from the workflow's checkpointer, which records only
where the loop is.
"""

from agentic_compression.results.records import RunRecord, TrialProvenance, TrialRecord
from agentic_compression.results.store import (
    ResultsStore,
    TrialConflictError,
    make_results_store,
    parse_storage_url,
)

__all__ = [
    "ResultsStore",
    "RunRecord",
    "TrialConflictError",
    "TrialProvenance",
    "TrialRecord",
    "make_results_store",
    "parse_storage_url",
]
