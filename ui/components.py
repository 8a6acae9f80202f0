"""Streamlit rendering of SDK objects: answers with citation chips, the sources panel, image-search results.

Everything here draws what the SDK returned; nothing here searches, prompts or verifies.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import streamlit as st

from assistant.sdk import Citeline
from assistant.types import Answer, Source, StreamEvent
from ui import charts, render
from ui.state import ChatItem, Session, UIConfig, search_filters


# -- chat -------------------------------------------------------------------------------------------------
def render_turn(sdk: Citeline, session: Session, index: int, item: ChatItem) -> None:
    with st.chat_message("user"):
        if item.image:
            st.image(item.image, width=160)
        if item.question:
            st.markdown(item.question)
    with st.chat_message("assistant"):
        if item.error:
            st.error(item.error)
        elif item.answer is not None:
            render_answer(session, index, item.answer)
            charts.render_chart(item.chart, str(index))
        else:
            render_image_hits(session, index, item)


def render_answer(session: Session, index: int, answer: Answer) -> None:
    if answer.abstained:
        st.warning(f"**Not in your documents.** {answer.text}", icon=":material/search_off:")
        if answer.sources:
            st.caption("The closest passages are in the sources panel.")
    else:
        st.markdown(render.with_badges(answer.text, render.citation_states(answer)))
    if answer.dropped and not answer.abstained:
        st.caption(render.removed_caption(answer))
    rejected = [c for c in answer.checks if not c.shown]
    if rejected:
        with st.expander(f"Checked and not shown ({len(rejected)})", icon=":material/rule:"):
            for c in rejected:
                st.markdown(render.check_line(c))
    citation_chips(session, index, answer)
    st.download_button("Export as Markdown", render.answer_markdown(answer),
                       file_name=f"citeline-answer-{index + 1}.md",
                       mime="text/markdown", key=f"export-{index}", icon=":material/download:", type="tertiary")


def citation_chips(session: Session, index: int, answer: Answer) -> None:
    """One clickable chip per source; choosing one shows it in the sources panel."""
    views = render.source_views(answer)
    if not views:
        return
    labels = {v.source.n: _chip_label(v) for v in views}
    label = "Closest sources" if answer.abstained else "Sources"
    st.pills(label, list(labels), format_func=labels.__getitem__, key=f"chips-{index}",
             on_change=_chip_changed, args=(session, index))


def _chip_label(view: render.SourceView) -> str:
    mark = {"verified": "✓ ", "unverified": "? ", "inferred": "~ "}.get(view.state, "")
    return f"{mark}[{view.source.n}] {view.source.doc} p.{view.source.page}"


def _chip_changed(session: Session, index: int) -> None:
    session.set_focus(index, st.session_state.get(f"chips-{index}"))


def render_image_hits(session: Session, index: int, item: ChatItem) -> None:
    if not item.hits:
        st.warning("**Nothing similar in your documents.**", icon=":material/image_search:")
        return
    st.markdown(f"Found **{len(item.hits)}** related passage(s) and figure(s) for this image.")
    labels = {i: f"[{i}] {h.doc_name} p.{h.page}" for i, h in enumerate(item.hits, 1)}
    st.pills("Results", list(labels), format_func=labels.__getitem__, key=f"chips-{index}",
             on_change=_chip_changed, args=(session, index))


def stream_answer(sdk: Citeline, question: str, cfg: UIConfig, history: list[Any], filters: Any,
                  image: str | None = None) -> Answer:
    """Show the model's draft as it is generated, then return the verified answer (drawn on the next run)."""
    stream = sdk.ask(question, model=cfg.model, stream=True, history=history, filters=filters, image=image,
                     **cfg.answer_options())
    status = st.empty()
    status.caption("Searching your documents…")
    st.write_stream(_tokens(stream.events(), status))
    status.empty()
    return stream.result()


def _tokens(events: Iterator[StreamEvent], status: Any) -> Iterator[str]:
    for event in events:
        if event.type == "sources":
            status.caption(f"Reading {len(event.sources)} source(s)…")
        elif event.type == "token":
            status.empty()
            yield event.text


# -- sources panel ----------------------------------------------------------------------------------------
def sources_panel(sdk: Citeline, session: Session, cfg: UIConfig) -> None:
    focus = session.focus()
    if focus is None:
        st.caption("Sources appear here: the cited page with the passage or figure highlighted.")
        return
    index, chosen = focus
    item = session.items[index]
    st.caption(f"For: _{item.question or 'image search'}_")
    if item.answer is not None:
        answer_sources(sdk, index, item.answer, chosen)
        if cfg.debug:
            retrieval_debug(sdk, session, index, item.answer, cfg)
    else:
        hit_sources(sdk, index, item.hits, chosen)


def answer_sources(sdk: Citeline, index: int, answer: Answer, chosen: int | None) -> None:
    views = render.source_views(answer)
    if answer.abstained:
        st.info("Not found in your documents. Closest sources:", icon=":material/info:")
    if not views:
        st.caption("No sources.")
    first = chosen if chosen is not None else (views[0].source.n if views else None)
    for view in views:
        source_card(sdk, view, expanded=view.source.n == first, key=f"{index}-{view.source.n}")


def source_card(sdk: Citeline, view: render.SourceView, *, expanded: bool, key: str) -> None:
    s = view.source
    title = f"[{s.n}] {s.doc} · page {s.page} · {_state_label(view.state)}"
    with st.expander(title, expanded=expanded):
        source_body(sdk, s, view.quote, view.bbox, key)


def source_body(sdk: Citeline, s: Source, quote: str, bbox: Any, key: str) -> None:
    """The page thumbnail (cited region highlighted) beside the quoted text; below, the cited region at a
    readable size and the figure crop."""
    page = sdk.page_image(s.doc_id, s.page)
    thumb = render.highlighted_thumbnail(page, bbox) if page else None
    left, right = st.columns([1, 3]) if thumb is not None else (None, st.container())
    if left is not None and thumb is not None:
        left.image(thumb, width="stretch")
    with right:
        if s.attached_to is not None:
            st.caption(render.attached_caption(s.attached_to))
        _quote(quote)
        table = render.table_markdown(s.text) if s.kind == "table" else None
        if table:  # a table (a sheet's cell range included) reads as a table
            st.markdown(table)
    region = render.region_view(page, bbox) if page is not None and bbox else None
    if region is not None:
        st.image(region, width="stretch")
    crop = sdk.asset(s.figure_path)
    if crop is not None:
        st.image(str(crop), caption="Figure from the document", width="stretch")
    if page is not None and (page.source or page.thumbnail) and st.button(
            "Open page", key=f"open-{key}", icon=":material/open_in_full:", type="tertiary"):
        open_page(sdk, s.doc_id, s.page, tuple(bbox) if bbox else None, s.doc)


def _state_label(state: str) -> str:
    return {"verified": ":green[verified ✓]", "unverified": ":orange[unverified]",
            "inferred": ":orange[inferred]", "not cited": ":gray[not cited]"}[state]


def _quote(text: str) -> None:
    text = " ".join(text.split())
    st.markdown("> " + (text[:600] + "…" if len(text) > 600 else text))


def open_page(sdk: Citeline, doc_id: str, page: int, bbox: tuple[float, ...] | None, doc: str) -> None:
    st.dialog(f"{doc} · page {page}", width="large")(_page_dialog)(sdk, doc_id, page, bbox, doc)


def _page_dialog(sdk: Citeline, doc_id: str, page: int, bbox: tuple[float, ...] | None, doc: str) -> None:
    info = sdk.page_image(doc_id, page)
    image = render.full_page(info, bbox) if info else None
    if image is None:
        st.warning("This page has no image (the source file is gone and no thumbnail was stored).")
        return
    st.image(image, caption=f"{doc}, page {page}", width="stretch")


def hit_sources(sdk: Citeline, index: int, hits: list[Any], chosen: int | None) -> None:
    for n, hit in enumerate(hits, 1):
        title = f"[{n}] {hit.doc_name} · page {hit.page} · {hit.kind}"
        with st.expander(title, expanded=n == (chosen or 1)):
            st.caption("Found by: " + render.retrievers_label(hit.retrievers))
            source = Source(n, hit.doc_name, hit.doc_id, hit.page, hit.kind, hit.text, hit.score,
                            tuple(hit.bbox.as_list()) if hit.bbox else None, None, hit.id, hit.figure_path,
                            hit.attached_to)
            source_body(sdk, source, hit.text, source.bbox, f"hit-{index}-{n}")


def retrieval_debug(sdk: Citeline, session: Session, index: int, answer: Answer, cfg: UIConfig) -> None:
    """Which retrievers found each passage for this question, and at what rank (the search is re-run once
    and kept: the answer object carries only the sources the model saw)."""
    with st.expander("Retrieval debug", icon=":material/bug_report:"):
        cache = session.state["debug_hits"]
        if index not in cache:
            cache[index] = sdk.search(answer.query or answer.question, top_k=cfg.top_k, filters=search_filters(cfg))
        shown = {s.hit_id for s in answer.sources if s.hit_id is not None}
        st.caption(f"Query searched: _{answer.query or answer.question}_ · confidence {answer.confidence:.2f}")
        st.dataframe(render.hit_rows(cache[index], shown), hide_index=True, width="stretch")
