"""The paper's research questions RQ1-RQ4 as reproducible experiments (``agentic-compress run-rq*``).

Design:

- Every candidate is a (recipe, runtime) pair measured for real by the product's evaluator (the
  same :class:`~agentic_compression.workflow.evaluator.Evaluator` the search uses), at full
  fidelity or, with ``--quick``, at screening fidelity (a quarter of the examples and windows,
  one latency repeat; ``evaluation.screening``).
- One experiment folder holds one :class:`~.measurements.MeasurementLog`
  (``measurements.jsonl``): a candidate is measured once per folder and shared by every arm and
  RQ that visits it; each arm is charged the measured cost of the evaluations it asked for. A
  killed ``run-all`` loses nothing measured: the next run in the folder reuses the log (under the
  same evaluation settings only; a different model, data or fidelity measures again).
- Each ``rqN.json`` holds the raw material (every trial of every arm, the settings, provenance:
  versions, seeds, data fingerprints, machine); the tables (``rqN.md``) and plots
  (``plots/rqN.svg``/``.png``) are rendered from that JSON alone (:mod:`.report`), so
  ``agentic-compress report DIR`` reproduces them byte for byte.
- Arms are driven by :func:`.arms.run_arm`: the product's planners (``planning``) proposing one
  candidate at a time from the measured history, as the search loop does, without its
  checkpointing (the measurement log plays that part here).

Modules: :mod:`.measurements` (the shared log), :mod:`.arms` (planner-driven and fixed arms, arm
statistics), :mod:`.rq1` ... :mod:`.rq4` (one question each: ``run`` and ``render``),
:mod:`.report` (files), :mod:`.session` (options, provenance, the run-all driver).
"""
