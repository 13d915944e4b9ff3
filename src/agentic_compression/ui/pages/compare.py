"""Compare: several runs side by side (their picks, fronts and the candidates they share), or one
run against the results gallery."""

from __future__ import annotations

from functools import partial
from typing import Any

import streamlit as st

from agentic_compression.ui.common import config, guarded
from agentic_compression.ui.data import AXES, list_runs, run_trials

st.title("Compare")
cfg = config()
runs = list_runs(cfg)
ids = [r["run_id"] for r in runs]
chosen = st.multiselect("Runs", ids, default=ids[:2])
loaded: dict[str, Any] = {}
for run_id in chosen:
    found = guarded(partial(run_trials, cfg, run_id))
    if found is not None:
        loaded[run_id] = found
if loaded:
    summary_rows = []
    for run_id, (summary, rows) in loaded.items():
        pick = next((r for r in rows if r["chosen"]), None)
        summary_rows.append(
            {
                "run": run_id, "model": summary["model"], "status": summary["status"],
                "trials": len(rows), "front": sum(r["on_front"] for r in rows),
                "CO2 of the search (g)": round(summary["co2_kg"] * 1000, 3),
                f"pick ({summary['select']})": pick["label"] if pick else "-",
                **({AXES[k][0]: pick[k] for k in AXES} if pick else {}),
            }
        )  # fmt: skip
    st.subheader("Side by side")
    st.dataframe(summary_rows, hide_index=True)
    by_label = {  # full-fidelity measurements only: screenings are not comparable
        run_id: {r["label"]: r for r in rows if r["status"] == "ok" and r["fidelity"] == "full"}
        for run_id, (_, rows) in loaded.items()
    }
    shared = set.intersection(*(set(v) for v in by_label.values())) if by_label else set()
    if len(loaded) > 1 and shared:
        st.subheader(f"Candidates in every run ({len(shared)})")
        st.dataframe(
            [{"candidate": label, **{f"{run_id} accuracy": by_label[run_id][label]["accuracy"]
                                     for run_id in by_label},
              **{f"{run_id} ms/token": by_label[run_id][label]["latency_ms"] for run_id in by_label}}
             for label in sorted(shared)],
            hide_index=True,
        )  # fmt: skip

st.subheader("Against the gallery")
target = st.selectbox("Run", ids, key="gallery_run") if ids else None
if target is not None and st.button("Compare with the gallery"):
    from agentic_compression.results import gallery

    def against(run_id: str = target) -> list[gallery.Comparison]:
        return gallery.compare(gallery.load_run(cfg.runs_dir / run_id))

    comparisons = guarded(against)
    for c in comparisons or []:
        same = "same evaluation settings" if c.same_settings else "different evaluation settings"
        st.markdown(f"**vs {c.entry['name']}** ({c.entry['machine']}; {same}); pick: this run "
                    f"{c.run_pick}, gallery {c.entry_pick}")  # fmt: skip
        st.dataframe([d.__dict__ for d in c.shared], hide_index=True)
