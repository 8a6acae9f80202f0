"""Citeline's Streamlit app: `citeline ui --kb DIR` (or `streamlit run ui/app.py -- --kb DIR`).

Thin: read the configuration at this edge (the password gate first, when CITELINE_UI_PASSWORD is set), get the
SDK, draw the sidebar and the chosen view.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `streamlit run ui/app.py` runs this file as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import streamlit as st

from assistant.sdk import Citeline
from ui import charts, components
from ui.cli import PASSWORD_ENV, REMOTE_ENV
from ui.kb_page import kb_page
from ui.login import login_gate
from ui.sidebar import sidebar
from ui.state import ChatItem, Session, UIConfig, parse_args, search_filters
from ui.uploads import QUERY_IMAGE_TYPES, save_query_image

PANE_HEIGHT = 560  # chat and sources scroll side by side above the chat box on a laptop-sized window
COMPACT_CSS = "<style>.block-container{padding-top:1.5rem;padding-bottom:1rem}</style>"


@st.cache_resource(show_spinner="Opening the knowledge base…")
def get_sdk(kb_dir: str, text_model: str | None, image_model: str | None) -> Citeline:
    """One SDK object per KB and model choice, shared by sessions (models load once)."""
    return Citeline(kb_dir or None, text_model=text_model, image_model=image_model)


def main() -> None:
    st.set_page_config(page_title="Citeline", page_icon=":material/menu_book:", layout="wide")
    st.html(COMPACT_CSS)
    if not login_gate(os.environ.get(PASSWORD_ENV) or None, st.session_state):  # nothing else before it
        return
    base: UIConfig = st.session_state.setdefault("base_config", parse_args(sys.argv[1:]))
    session = Session(st.session_state)
    default = get_sdk(base.kb_dir, base.text_model, base.image_model)
    view, cfg = sidebar(base.with_(kb_dir=base.kb_dir or str(default.kb_dir)), session, default.settings.model,
                        remote=bool(os.environ.get(REMOTE_ENV)))
    sdk = get_sdk(cfg.kb_dir, cfg.text_model, cfg.image_model)
    session.ensure_kb(str(sdk.kb_dir))
    if view == "Chat":
        chat_page(sdk, session, cfg)
    else:
        kb_page(sdk, session)


def chat_page(sdk: Citeline, session: Session, cfg: UIConfig) -> None:
    prompt = st.chat_input("Ask about your documents, or attach an image to search with",
                           accept_file=True, file_type=list(QUERY_IMAGE_TYPES), key="prompt")
    chat_column, panel_column = st.columns([3, 2], gap="medium")
    chat = chat_column.container(height=PANE_HEIGHT, border=False, autoscroll=True)
    panel = panel_column.container(height=PANE_HEIGHT, border=True)
    with chat:
        if not session.items and not prompt:
            st.markdown("#### Ask a question about your documents")
            st.caption("Every answer cites the page it came from; if your documents do not say, Citeline says so.")
        for index, item in enumerate(session.items):
            components.render_turn(sdk, session, index, item)
        if prompt:
            session.add(run_turn(sdk, session, cfg, prompt))
            st.rerun()
    with panel:
        st.markdown("**Sources**")
        components.sources_panel(sdk, session, cfg)


def run_turn(sdk: Citeline, session: Session, cfg: UIConfig, prompt: Any) -> ChatItem:
    text = (getattr(prompt, "text", prompt) or "").strip()
    files = list(getattr(prompt, "files", None) or [])
    item = ChatItem(question=text)
    try:
        item.image = str(save_query_image(files[0])) if files else None
        with st.chat_message("user"):
            if item.image:
                st.image(item.image, width=160)
            st.markdown(text)
        with st.chat_message("assistant"):
            if text and charts.is_chart_request(text):  # numbers from table cells, never from the model
                item.chart = charts.chart_for(sdk, text, search_filters(cfg))
                item.answer = charts.chart_answer(item.chart)
            elif text:
                history = _turns(session)
                item.answer = components.stream_answer(sdk, text, cfg, history, search_filters(cfg),
                                                       image=item.image)
            elif item.image:
                item.hits = sdk.search(None, image=item.image, top_k=cfg.top_k, filters=search_filters(cfg))
    except Exception as exc:  # the edge: show what went wrong and how to fix it, keep the app alive
        item.error = f"{type(exc).__name__}: {exc}"
    return item


def _turns(session: Session) -> list[Any]:
    from assistant.chat import Turn  # the SDK's conversation record

    return [Turn(a.question, a.text) for a in session.history()]


main()
