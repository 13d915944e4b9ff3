"""The Streamlit entry point (``agentic-compress ui`` runs ``streamlit run`` on this file)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

PAGES = Path(__file__).parent / "pages"


def main() -> None:
    st.set_page_config(page_title="agentic-compression", layout="wide")
    navigation = st.navigation(
        [
            st.Page(PAGES / "runs.py", title="Runs", default=True),
            st.Page(PAGES / "dashboard.py", title="Live dashboard"),
            st.Page(PAGES / "explorer.py", title="Pareto explorer"),
            st.Page(PAGES / "experiments.py", title="Experiments"),
            st.Page(PAGES / "compare.py", title="Compare"),
        ]
    )
    navigation.run()


if __name__ == "__main__":  # streamlit runs this file as __main__
    main()
