"""Entry point (`make run` = `streamlit run app.py`): page setup and navigation, nothing else."""

from pathlib import Path

import streamlit as st

from tl_ui.style import ICON

ROOT = Path(__file__).resolve().parent

st.set_page_config(page_title="Transfer learning race", page_icon=ICON, layout="wide")
st.navigation([
    st.Page(str(ROOT / "pages" / "race.py"), title="Race", icon=":material/flag:", default=True),
    st.Page(str(ROOT / "pages" / "experiments.py"), title="Experiments", icon=":material/science:"),
    st.Page(str(ROOT / "pages" / "class.py"), title="Class", icon=":material/groups:"),
    st.Page(str(ROOT / "pages" / "about.py"), title="About", icon=":material/info:"),
]).run()
