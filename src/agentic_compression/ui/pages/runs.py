"""Runs: launch a search with the CLI's options, list runs with their state, resume or stop one."""

from __future__ import annotations

import os
import signal
import socket

import streamlit as st

from agentic_compression.ui import jobs
from agentic_compression.ui.common import config, guarded
from agentic_compression.ui.data import list_runs
from agentic_compression.ui.forms import search_args

PLANNERS = ["offline", "llm", "rules", "random"]
PRESETS = ["balanced", "accuracy", "carbon", "efficiency"]
RUNTIMES = ["torch", "llamacpp", "onnxruntime", "vllm"]


def launch_form() -> None:
    cfg = config()
    with st.form("launch"):
        st.subheader("Launch a search")
        left, right = st.columns(2)
        values: dict[str, object] = {
            "model": left.text_input("Model (alias, folder, .gguf, hub id)", "smollm2-135m"),
            "max_trials": left.number_input("Trial budget", 1, 1000, 8),
            "carbon_budget_kg": left.number_input(
                "Carbon budget (kg CO2)", 0.0001, 100.0, 0.1, format="%.4f"
            ),
            "planner": left.selectbox("Planner", PLANNERS),
            "objective": left.text_input("Objective (in words)", "balanced accuracy and carbon"),
            "runtimes": right.multiselect("Runtimes (empty: every one installed)", RUNTIMES),
            "tasks": right.text_input("lm-eval tasks", "arc_easy"),
            "limit": right.number_input("Examples per task", 1, 100000, 100),
            "fidelity": right.selectbox("Fidelity", ["full", "halving"]),
            "select": right.selectbox("Pick by", PRESETS),
        }
        with st.expander("Constraints and measurement settings"):
            a, b, c = st.columns(3)
            values["accuracy_threshold"] = a.number_input("Min accuracy (0-1)", value=None)
            values["max_memory_mb"] = b.number_input("Max size (MB)", value=None)
            values["max_latency_ms"] = c.number_input("Max latency (ms/token)", value=None)
            values["time_budget_min"] = a.number_input("Time budget (min)", value=None)
            values["patience"] = b.number_input("Patience (trials)", 1, 1000, 6)
            values["seed"] = c.number_input("Seed", 0, 2**31 - 1, 0)
            values["country"] = a.text_input("Grid country (ISO)", "USA")
            values["ppl_windows"] = b.number_input("Perplexity windows", 1, 1000, 16)
            values["latency_repeats"] = c.number_input("Latency repeats", 1, 100, 3)
            values["latency_new_tokens"] = a.number_input("Latency tokens", 2, 4096, 32)
            values["zone"] = b.text_input(
                "Grid zone for live intensity (empty: country average)", ""
            )
            values["meter"] = c.selectbox(
                "Energy meter", ["auto", "blended", "nvml", "rapl", "codecarbon"]
            )
            values["carbon_aware_max_delay_min"] = a.number_input(
                "Carbon-aware wait (min, needs a zone)", value=None
            )
            values["data_dir"] = b.text_input("Benchmark data folder (empty: the default)", "")
            values["calibration_file"] = c.text_input("Calibration text file (empty: GSM8K)", "")
            values["checkpoint_url"] = a.text_input("Checkpointer URL (empty: the run folder)", "")
        with st.expander("Scale-out (Ray)"):
            a, b, c, d = st.columns(4)
            values["executor"] = a.selectbox("Executor", ["local", "ray"])
            values["ray_address"] = b.text_input("Ray address (empty: a local Ray)", "")
            values["workers"] = c.number_input("CPU workers", 0, 1024, 2)
            values["gpu_workers"] = d.number_input("GPU workers", 0, 1024, 0)
        if st.form_submit_button("Launch"):
            args = guarded(lambda: search_args(values))
            if args is not None:
                store = ["--runs-dir", str(cfg.runs_dir), "--store-url", cfg.store_url]
                job = jobs.launch([*args, *store], cfg.jobs_dir)
                st.success(f"started in the background (pid {job.pid}): {job.shell}")


def runs_table() -> None:
    cfg = config()
    runs = list_runs(cfg)
    st.subheader(f"Runs ({len(runs)})")
    if not runs:
        st.info("No runs in this store yet.")
        return
    st.dataframe(
        [
            {k: r[k] for k in ("run_id", "model", "status", "trials", "detail", "updated")}
            for r in runs
        ],
        hide_index=True,
    )
    chosen = st.selectbox("Act on run", [r["run_id"] for r in runs], key="act")
    run = next(r for r in runs if r["run_id"] == chosen)
    resume, stop = st.columns(2)
    if resume.button("Resume", disabled=run["status"] == "running"):
        store = ["--runs-dir", str(cfg.runs_dir), "--store-url", cfg.store_url]
        job = jobs.launch(["resume", chosen, *store], cfg.jobs_dir)
        st.success(f"resuming in the background (pid {job.pid})")
    here = run.get("host") == socket.gethostname()
    if stop.button("Stop", disabled=run["status"] != "running" or not here) and run.get("pid"):
        try:
            os.kill(int(run["pid"]), signal.SIGTERM)
            st.warning(f"stopped {chosen}: resume it to continue where it stopped")
        except ProcessLookupError:
            st.info(f"{chosen} had already ended")
    if run["status"] == "running" and not here:
        st.caption(f"{chosen} runs on {run.get('host')}: stop it there")


def jobs_list() -> None:
    started = jobs.list_jobs(config().jobs_dir)
    if not started:
        return
    st.subheader("Started from this UI")
    for job in reversed(started[-10:]):
        state = "running" if jobs.is_alive(job.pid) else "ended"
        with st.expander(f"{job.started_at} · {state} · {job.shell}"):
            st.code(jobs.tail(job) or "(no output yet)")


st.title("Runs")
launch_form()
runs_table()
jobs_list()
