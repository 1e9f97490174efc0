"""Entry point (`make run` = `streamlit run app.py`): page setup and navigation, nothing else."""

from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent

st.set_page_config(page_title="Transfer learning race", page_icon=":material/flag:", layout="wide")

pages = [st.Page(str(ROOT / "pages" / "race.py"), title="Race", icon=":material/flag:", default=True)]
# The experiments page is written separately; show it once it exists.
if (ROOT / "pages" / "experiments.py").exists():
    pages.append(st.Page(str(ROOT / "pages" / "experiments.py"), title="Experiments", icon=":material/science:"))
pages.append(st.Page(str(ROOT / "pages" / "about.py"), title="About", icon=":material/info:"))
st.navigation(pages).run()
