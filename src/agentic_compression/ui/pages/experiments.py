"""Experiments: launch RQ1-RQ4 (or all) with their options, and view their tables and plots."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from agentic_compression.ui import jobs
from agentic_compression.ui.common import config
from agentic_compression.ui.data import experiment_folders

st.title("Experiments RQ1-RQ4")
cfg = config()
with st.form("experiment"):
    which = st.selectbox("Experiment", ["run-all", "run-rq1", "run-rq2", "run-rq3", "run-rq4"])
    left, right = st.columns(2)
    model = left.text_input("Model", "smollm2-135m")
    runtimes = left.multiselect("Runtimes (empty: every one installed)",
                                ["torch", "llamacpp", "onnxruntime", "vllm"])  # fmt: skip
    quick = left.checkbox("Quick (screening fidelity, small grids: minutes)", value=True)
    seeds = right.text_input("Seeds", "0,1,2")
    trials = right.number_input("Trials per search (0: default)", 0, 1000, 0)
    threshold = right.number_input("Accuracy threshold (empty: 0.95 x baseline)", value=None)
    name = right.text_input("Output folder name", datetime.now(UTC).strftime("%Y%m%d-%H%M%S"))
    if st.form_submit_button("Launch"):
        args = [which, "--model", model, "--seeds", seeds,
                "--output", str(cfg.experiments_dir / name)]  # fmt: skip
        args += ["--quick"] if quick else []
        args += ["--runtime", ",".join(runtimes)] if runtimes else []
        args += ["--trials", str(int(trials))] if trials else []
        args += ["--accuracy-threshold", str(threshold)] if threshold is not None else []
        job = jobs.launch(args, cfg.jobs_dir)
        st.success(f"started in the background (pid {job.pid}): {job.shell}")

folders = experiment_folders(cfg)
if not folders:
    st.info(f"No experiment results under {cfg.experiments_dir} yet.")
else:
    folder = st.selectbox("Results", folders, format_func=lambda p: p.name)
    for table in sorted(folder.glob("rq[1-4].md")):
        with st.expander(table.stem.upper(), expanded=table.stem == "rq1"):
            st.markdown(table.read_text(encoding="utf-8"))
            png = folder / "plots" / f"{table.stem}.png"
            svg = folder / "plots" / f"{table.stem}.svg"
            if png.exists():
                st.image(str(png))
            if svg.exists():
                st.download_button("Download SVG", svg.read_bytes(), file_name=svg.name,
                                   mime="image/svg+xml", key=f"svg-{table.stem}")  # fmt: skip
