"""Pareto explorer: 2-D and 3-D fronts with axis choice, parallel coordinates, the per-benchmark
breakdown, a point's provenance and runtime, downloads (SVG, PDF, PNG) and the artefact export."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import streamlit as st

from agentic_compression.ui import jobs
from agentic_compression.ui.common import config, guarded, run_picker
from agentic_compression.ui.data import AXES, list_runs, run_trials
from agentic_compression.ui.figures import figure_bytes, measured, parallel, scatter

# Drawn once per (rows, axes, format), not on every rerun of the page.
cached_figure_bytes = st.cache_data(show_spinner=False, max_entries=32)(figure_bytes)

st.title("Pareto explorer")
cfg = config()
chosen = run_picker(list_runs(cfg), key="explorer_run")
loaded = guarded(partial(run_trials, cfg, chosen)) if chosen else None
if loaded is not None:
    summary, rows = loaded
    ok = measured(rows)
    names = list(AXES)
    a, b, c = st.columns(3)

    def title(name: str) -> str:
        return AXES[name][0] if name in AXES else "none (2-D)"

    x = a.selectbox("x axis", names, index=names.index("co2_kg_per_1k_tokens"), format_func=title)
    y = b.selectbox("y axis", names, index=names.index("accuracy"), format_func=title)
    z = c.selectbox("z axis (3-D)", ["none", *names], format_func=title)
    if not ok:
        st.info("No measured trial yet.")
    else:
        st.plotly_chart(scatter(rows, x, y, None if z == "none" else z), key="explorer-plot")
        d1, d2, d3 = st.columns(3)
        for column, fmt, mime in ((d1, "svg", "image/svg+xml"), (d2, "pdf", "application/pdf"),
                                  (d3, "png", "image/png")):  # fmt: skip
            column.download_button(
                f"Download {fmt.upper()}", cached_figure_bytes(rows, x, y, fmt),
                file_name=f"{summary['run_id']}-{y}-vs-{x}.{fmt}", mime=mime,
            )  # fmt: skip
        st.subheader("Parallel coordinates")
        st.plotly_chart(parallel(rows), key="explorer-parallel")
        st.subheader("Per benchmark")
        st.dataframe(
            [{"trial": r["trial"], "candidate": r["label"], "runtime": r["runtime"],
              "front": r["on_front"], **r["benchmarks"]} for r in ok],
            hide_index=True,
        )  # fmt: skip
        labels = {f"#{r['trial']} {r['label']} ({r['runtime']})": r for r in ok}
        picked = labels[st.selectbox("Point", list(labels), key="explorer_point")]
        st.subheader(f"Trial {picked['trial']}: {picked['label']} in {picked['runtime']}")
        st.json({"objectives": {k: picked[k] for k in AXES}, "recipe": picked["recipe"],
                 "provenance": picked["provenance"]}, expanded=False)  # fmt: skip
        target = cfg.runs_dir / summary["run_id"] / "exports" / f"trial-{picked['trial']}"
        if st.button("Export the deployable artefact"):
            if target.exists() and any(target.iterdir()):
                st.info(f"already exported to {target}")
            else:
                store = ["--runs-dir", str(cfg.runs_dir), "--store-url", cfg.store_url]
                args = ["export", summary["run_id"], "--trial", str(picked["trial"]),
                        "--output", str(target), *store]  # fmt: skip
                job = jobs.launch(args, cfg.jobs_dir)
                st.success(f"exporting in the background (pid {job.pid}) to {target}")
        serve = Path(target) / "SERVE.md"
        if serve.exists():
            st.markdown(serve.read_text(encoding="utf-8"))
        with st.expander("All trials"):
            st.code(json.dumps([{k: r[k] for k in ("trial", "label", "runtime", "status",
                                                   "on_front", *AXES)} for r in rows], indent=1))  # fmt: skip
