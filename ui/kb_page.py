"""The knowledge-base view: what it holds, uploads with live ingestion progress, per-file errors, removal."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import streamlit as st

from assistant.jobs import ingest_queue
from assistant.sdk import Citeline
from ingest.errors import CitelineError
from ui.state import Session
from ui.uploads import MAX_UPLOAD_MB, UPLOAD_TYPES, save_uploads

STATUS_LABELS = {"ingested": "ingested", "unchanged": "unchanged", "failed": "failed",
                 "skipped": "skipped (unsupported)"}


def kb_page(sdk: Citeline, session: Session) -> None:
    st.subheader("Knowledge base")
    st.caption(f"{'Folder' if isinstance(sdk.kb_dir, Path) else 'Server'}: `{sdk.location}`")
    status = kb_status(sdk)
    if status is not None:
        counts_row(status)
    upload_section(sdk, session)
    last_report(session)
    documents_section(sdk, status)


def kb_status(sdk: Citeline) -> dict[str, Any] | None:
    try:
        return sdk.status()
    except CitelineError:
        st.info("This knowledge base is empty: upload documents below to create it.", icon=":material/info:")
        return None


def counts_row(status: dict[str, Any]) -> None:
    counts = status["counts"]
    cols = st.columns(5)
    for col, (label, key) in zip(cols, [("Documents", "documents"), ("Pages", "pages"), ("Passages", "chunks"),
                                        ("Figures", "figures"), ("Failed files", "failed_files")], strict=True):
        col.metric(label, counts.get(key, 0))


# -- uploads ----------------------------------------------------------------------------------------------
def upload_section(sdk: Citeline, session: Session) -> None:
    with st.container(border=True):
        st.markdown("**Add documents** · PDF, images, text, Markdown, HTML, Office and OpenDocument, CSV, "
                    "e-mail, EPUB · "
                    f"up to {MAX_UPLOAD_MB} MB per file")
        left, right = st.columns(2)
        files = left.file_uploader("Files", type=list(UPLOAD_TYPES), accept_multiple_files=True,
                                   max_upload_size=MAX_UPLOAD_MB, key=_uploader_key(session, "files"))
        folder = right.file_uploader("A folder", type=list(UPLOAD_TYPES), accept_multiple_files="directory",
                                     max_upload_size=MAX_UPLOAD_MB, key=_uploader_key(session, "folder"))
        chosen = list(files or []) + list(folder or [])
        if session.state.get("job"):  # a job started on an earlier run is still being followed
            follow_job(sdk, session)
        if st.button(f"Ingest {len(chosen)} file(s)", type="primary", disabled=not chosen,
                     icon=":material/upload_file:", key="ingest"):
            ingest_uploads(sdk, session, chosen)


def _uploader_key(session: Session, name: str) -> str:
    # a new key after each ingest empties the uploader
    return f"upload-{name}-{session.state.get('upload_round', 0)}"


def ingest_uploads(sdk: Citeline, session: Session, files: list[Any]) -> None:
    """Save the uploads, then ingest them as a background job (assistant.jobs) and follow its progress."""
    saved = save_uploads(files, sdk.files_dir / "uploads")
    report: dict[str, Any] = {"rejected": [(r.name, r.reason) for r in saved.rejected], "files": [], "totals": {}}
    session.state["report"] = report
    session.state["upload_round"] = session.state.get("upload_round", 0) + 1
    if saved.saved:
        session.state["job"] = ingest_queue(sdk).submit([str(p) for p in saved.saved]).id
        follow_job(sdk, session)  # reruns when the job is over
    st.rerun()


def follow_job(sdk: Citeline, session: Session) -> None:
    """Show the running job's progress until it ends, then its report. The job runs in its own thread: leaving
    the page stops only this polling, and the next visit picks the job up again."""
    queue = ingest_queue(sdk)
    bar = st.progress(0.0, text="Ingesting…")
    while (job := queue.get(session.state["job"])) is not None and job.state in ("queued", "running"):
        total = max(job.files_total, 1)
        name = Path(job.current).name if job.current else ""
        bar.progress(min(job.files_done / total, 1.0), text=f"{job.message} · {name}".strip(" ·"))
        time.sleep(0.2)
    bar.empty()
    report = session.state.get("report") or {"rejected": [], "files": [], "totals": {}}
    if job is not None and job.report is not None:
        report.update(job.report)
    elif job is not None:
        report["error"] = job.error
    session.state["report"] = report
    session.state.pop("job", None)
    st.rerun()


def last_report(session: Session) -> None:
    report = session.state.get("report")
    if not report:
        return
    if report.get("error"):
        st.error(report["error"])
    totals = report.get("totals") or {}
    if totals:
        st.success(f"Ingested {totals.get('ingested', 0)} · unchanged {totals.get('unchanged', 0)} · "
                   f"failed {totals.get('failed', 0)} · {totals.get('pages', 0)} pages in "
                   f"{totals.get('seconds', 0):.1f} s", icon=":material/task_alt:")
    rows = [{"file": Path(f["path"]).name, "status": STATUS_LABELS.get(f["status"], f["status"]),
             "pages": f["pages"], "error": f["error"] or ""} for f in report.get("files", [])]
    rows += [{"file": name, "status": "rejected", "pages": 0, "error": reason}
             for name, reason in report.get("rejected", [])]
    if rows:
        st.dataframe(rows, hide_index=True, width="stretch")


# -- documents --------------------------------------------------------------------------------------------
def documents_section(sdk: Citeline, status: dict[str, Any] | None) -> None:
    if status is None:
        return
    docs = sdk.documents()
    st.markdown(f"**Documents** ({len(docs)})")
    if docs:
        st.dataframe([_doc_row(d) for d in docs], hide_index=True, width="stretch")
    failed = status.get("failed", [])
    if failed:
        st.markdown("**Files that failed**")
        st.dataframe([{"file": Path(f["path"]).name, "error": f["error"], "path": f["path"]} for f in failed],
                     hide_index=True, width="stretch")
    remove_section(sdk, docs, failed)


def _doc_row(doc: Any) -> dict[str, Any]:
    return {"document": doc.name, "type": doc.kind, "pages": doc.pages, "passages": doc.chunks - doc.figures,
            "figures": doc.figures, "status": "ingested", "files": len(doc.paths)}


def remove_section(sdk: Citeline, docs: list[Any], failed: list[dict[str, Any]]) -> None:
    options = {d.name: list(d.paths) for d in docs}
    options.update({Path(f["path"]).name + " (failed)": [f["path"]] for f in failed})
    if not options:
        return
    chosen = st.multiselect("Remove documents", list(options), placeholder="Choose documents to remove")
    if st.button("Remove", disabled=not chosen, icon=":material/delete:", key="remove"):
        paths = [p for name in chosen for p in options[name]]
        removed = sdk.remove(*paths)
        st.toast(f"Removed {len(removed)} file(s)")
        st.rerun()
