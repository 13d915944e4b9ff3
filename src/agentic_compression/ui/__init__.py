"""The web UI (``agentic-compress ui``): a Streamlit app over the same runs, stores and commands as
the CLI.

Design: the UI never runs a search in its own process. Launching a run, a resume or an experiment
starts the CLI command in a background process of its own session (:mod:`.jobs`), writing its
terminal output to a log file beside the run; the run checkpoints as any CLI run does, so it
survives page reloads, a closed browser or a restarted UI, and a stopped one resumes. Pages read
the results store and the run folders (:mod:`.data`) and draw with plotly (interactive) and
matplotlib (SVG, PDF and PNG downloads that need no browser; :mod:`.figures`).

Pages (``ui/pages``): Runs (launch, list, resume, stop), Dashboard (live: machine load, carbon
against the budget, trials, the front as it moves), Explorer (2-D/3-D fronts with axis choice,
parallel coordinates, per-benchmark breakdown, provenance, artefact export), Experiments (RQ1-RQ4:
launch and view), Compare (runs side by side, and against the gallery).

Settings come from the environment, set by ``agentic-compress ui``: ``AGENTIC_COMPRESSION_UI_RUNS``
(the runs folder) and ``AGENTIC_COMPRESSION_UI_STORE`` (results store URL; default the runs
folder's ``results.sqlite``), ``AGENTIC_COMPRESSION_UI_EXPERIMENTS`` (experiment folders).
"""
