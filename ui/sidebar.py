"""The sidebar: which view, which knowledge base, and the answer settings (generator, sampling, retrieval)."""

from __future__ import annotations

import streamlit as st

from retrieval.store import masked
from ui.state import MODALITIES, Session, UIConfig

VIEWS = ("Chat", "Knowledge base")
GENERATORS = {
    "Offline (Qwen2.5 0.5B)": "qwen",
    "Extractive (no model)": "extractive",
    "Local vision model": "vlm",
    "OpenAI-compatible server": "openai",
    "Other model spec": "spec",
}
DEFAULT_VLM = "HuggingFaceTB/SmolVLM-256M-Instruct"


def sidebar(base: UIConfig, session: Session, default_model: str, remote: bool = False) -> tuple[str, UIConfig]:
    """`remote` (served off loopback): the knowledge base and the model are the ones `citeline ui` was started
    with, plus the built-in offline ones; no folder, path or URL typed by a visitor is ever opened."""
    with st.sidebar:
        st.title("Citeline")
        st.caption("Answers from your documents, with every claim cited.")
        view = st.radio("View", VIEWS, horizontal=True, key="view", label_visibility="collapsed")
        if remote:
            kb_dir = base.kb_dir
            st.caption(f"Knowledge base: `{masked(kb_dir)}`")  # a DSN's password never shown
        else:
            kb_dir = st.text_input("Knowledge base folder", value=base.kb_dir, key="kb_dir_input",
                                   help="A folder holding a Citeline knowledge base (a new folder creates one), "
                                   "or a postgresql:// DSN.")
        if st.button("Clear conversation", icon=":material/delete_sweep:", width="stretch",
                     disabled=not session.items):
            session.clear()
        with st.expander("Settings", icon=":material/tune:"):
            cfg = settings(base.with_(kb_dir=kb_dir.strip()), base.model or default_model, remote)
    return str(view), cfg


def settings(cfg: UIConfig, default_model: str, remote: bool = False) -> UIConfig:
    model = fixed_generator_spec(default_model) if remote else generator_spec(default_model)
    temperature = st.slider("Temperature", 0.0, 1.5, cfg.temperature, 0.05, key="temperature",
                            help="0 = deterministic; higher = more varied wording")
    max_tokens = st.number_input("Max answer tokens", 16, 2048, cfg.max_tokens, 16, key="max_tokens")
    top_k = st.slider("Passages retrieved (top-k)", 1, 30, cfg.top_k, key="top_k")
    modalities = st.multiselect("Search in", MODALITIES, default=list(cfg.modalities), key="modalities",
                                help="Text passages, tables and figures")
    debug = st.toggle("Retrieval debug", value=cfg.debug, key="debug",
                      help="Show which retrievers found each source, and their ranks")
    return cfg.with_(model=model, temperature=float(temperature), max_tokens=int(max_tokens), top_k=int(top_k),
                     modalities=tuple(modalities), debug=bool(debug))


def fixed_generator_spec(default: str) -> str:
    """The model the server was started with, or a built-in offline one: no spec, path or URL to type."""
    choices = {name: spec for name, spec in GENERATORS.items() if spec in ("qwen", "extractive")}
    if default not in choices.values():
        choices = {f"Configured ({default.split('@', 1)[0]})": default, **choices}
    start = list(choices.values()).index(default)
    return choices[st.selectbox("Answer model", list(choices), index=start, key="generator")]


def generator_spec(default: str) -> str:
    """The generator choice as a model spec (see `assistant.generators.build_generator`)."""
    names = list(GENERATORS)
    start = next((i for i, n in enumerate(names) if GENERATORS[n] == default), names.index("Other model spec"))
    kind = GENERATORS[st.selectbox("Answer model", names, index=start, key="generator")]
    if kind == "vlm":
        return "vlm:" + st.text_input("Vision model (hub id or local path)", DEFAULT_VLM, key="vlm_id").strip()
    if kind == "openai":
        url = st.text_input("Server URL", "http://127.0.0.1:8080/v1", key="openai_url").strip()
        name = st.text_input("Model name", "local-model", key="openai_model").strip()
        st.caption("The API key is read from OPENAI_API_KEY or CITELINE_API_KEY.")
        return f"openai:{name}@{url}"
    if kind == "spec":
        return st.text_input("Model spec", default, key="model_spec").strip() or default
    return kind
