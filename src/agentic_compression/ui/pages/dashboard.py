"""Live dashboard: the machine's load, the run's carbon against its budget, trials done, and the
Pareto front moving as trials finish (refreshed every few seconds while the page is open)."""

from __future__ import annotations

import streamlit as st

from agentic_compression.ui.common import config, guarded, run_picker
from agentic_compression.ui.data import list_runs, machine_now, run_trials
from agentic_compression.ui.figures import scatter

REFRESH_S = 3.0

st.title("Live dashboard")
chosen = run_picker(list_runs(config()), key="dashboard_run", prefer_running=True)


@st.fragment(run_every=REFRESH_S)
def live(run_id: str) -> None:
    loaded = guarded(lambda: run_trials(config(), run_id))
    if loaded is None:
        return
    summary, rows = loaded
    machine = machine_now()
    cols = st.columns(5)
    cols[0].metric("CPU", f"{machine['cpu_percent']:.0f}%")
    cols[1].metric("Memory", f"{machine['memory_percent']:.0f}%")
    gpu = machine["gpu_percent"]
    cols[2].metric("GPU", "no GPU" if gpu is None else f"{gpu:.0f}%")
    power = machine["gpu_power_w"]
    cols[3].metric("GPU power", "-" if power is None else f"{power:.0f} W")
    cols[4].metric("Trials", f"{len(rows)} / {summary['max_trials']}")
    budget = summary["carbon_budget_kg"]
    used = summary["co2_kg"]
    if budget:
        st.progress(
            min(1.0, used / budget), text=f"carbon {used * 1000:.3f} g of {budget * 1000:.0f} g"
        )
    else:
        st.caption(f"carbon {used * 1000:.3f} g (no budget)")
    st.caption(f"{summary['status']}: {summary['progress'] or summary['stop_reason'] or ''}")
    front = sum(r["on_front"] for r in rows)
    st.plotly_chart(
        scatter(rows, "co2_kg_per_1k_tokens", "accuracy"), key=f"live-front-{len(rows)}"
    )
    st.caption(f"{front} trials on the front (large diamonds), {len(rows)} measured")


if chosen is not None:
    live(chosen)
