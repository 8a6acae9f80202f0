"""Ingest throughput: local worker processes vs a Ray cluster of one and of two nodes, on the same PDFs.

    .venv/bin/python bench/ray_ingest.py [--runs 3] [--set text|quick|ocr|figures] [--no-ocr] [--fake] [--json OUT]

Each run ingests the set into a fresh KB with the offline default models (MiniLM-q8, the EfficientNet tagger;
`--fake` for the hash embedders, which leaves parsing and the engine's own cost). Ray runs go to a real cluster
started here on loopback addresses (head 127.0.0.2, second node 127.0.0.3, `tests/ray_cluster.py`), two logical
CPUs per node. Prints medians of the runs, the ratio to local, and where the time went: the driver's wall
clock; the Ray actors' model loading; parse and embed seconds summed over the nodes (they overlap, so they can
exceed the wall); the driver's commits (write); the critical path the work would take spread evenly (loading,
then the slower stage divided over its workers, then the commits); and the rest: Ray's scheduling and transfers
plus uneven spreading. Locally the writer embeds, so its "embed+write" holds the text embedding too.

Read the figures for what they are on this machine: both "nodes" share the same cores (2 here, also used by
other work), so a second node adds processes, not hardware; what the two-node run can show is the engine's
overhead and that the work does spread, not a speed-up. On real machines each node brings its own cores.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from ingest_benchmark import PDFS  # noqa: E402
from ingest_benchmark import SETS as _SETS  # noqa: E402

from retrieval.kb import KnowledgeBase  # noqa: E402
from retrieval.kb_writer import KBWriter  # noqa: E402
from retrieval.settings import KBSettings  # noqa: E402

# "quick": five real text PDFs of the "text" set (73 pages), for a loaded machine where 281 pages x 9 runs is too long
SETS = {**_SETS, "quick": ["pdfminer__naacl06-shinyama.pdf", "pdfminer__dmca.pdf", "pdfjs__tracemonkey.pdf",
                           "pdfminer__175.pdf", "pdfminer__nlp2004slides.pdf"]}


def one_run(files: list[str], settings: KBSettings, engine: Any) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="citeline-bench-"))
    try:
        started = time.perf_counter()
        with KnowledgeBase.open(work / "kb", settings, writable=True) as kb:
            report = KBWriter(kb, engine=engine).run(files)
        wall = time.perf_counter() - started
    finally:
        shutil.rmtree(work, ignore_errors=True)
    totals = report.totals
    row: dict[str, Any] = {"wall_s": wall, "pages": totals["pages"], "failed": totals["failed"],
                           "pages_per_s": totals["pages"] / wall, "write_s": sum(f.seconds for f in report.files)}
    if engine is not None:
        stats = engine.last_stats
        row.update({k: v for k, v in asdict(stats).items() if k.endswith("_s") and k != "wall_s"})
        row["parsed_on"], row["embedded_on"] = stats.parsed_on, stats.embedded_on
    return row


def summarise(name: str, rows: list[dict[str, Any]], local_rate: float | None) -> dict[str, Any]:
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0] if isinstance(rows[0][k], float | int)}
    out = {"mode": name, "runs": len(rows), **{k: round(v, 3) for k, v in med.items()}}
    if local_rate:
        out["ratio_to_local"] = round(med["pages_per_s"] / local_rate, 3)
    if "parse_s" in med:
        # the work's own critical path if it spread evenly: model loading, then the slower of the two stages
        # (parse seconds over the parse slots, one per node; embed seconds over the actors); the rest of the
        # wall clock is Ray's scheduling and transfers plus uneven spreading (few big files over few actors)
        nodes = max(len(rows[-1]["parsed_on"]), len(rows[-1]["embedded_on"]), 1)
        actors = max(len(rows[-1]["embedded_on"]), 1)
        critical = med["ready_s"] + max(med["parse_s"] / nodes, med["embed_s"] / actors) + med["write_s"]
        out["critical_path_s"] = round(critical, 3)
        out["overhead_and_imbalance_s"] = round(med["wall_s"] - critical, 3)
        out["parsed_on"], out["embedded_on"] = rows[-1]["parsed_on"], rows[-1]["embedded_on"]
    return out


def print_row(s: dict[str, Any]) -> None:
    what = "write" if "parse_s" in s else "embed+write"  # locally the writer embeds too
    line = f"{s['mode']:<7} {s['pages_per_s']:6.2f} pages/s  wall {s['wall_s']:6.1f} s  {what} {s['write_s']:5.1f} s"
    if "parse_s" in s:
        line += (f"  ready {s['ready_s']:4.1f} s  parse {s['parse_s']:5.1f} s  embed {s['embed_s']:5.1f} s"
                 f"  read+fetch {s['read_s'] + s['fetch_s']:4.1f} s  critical path {s['critical_path_s']:5.1f} s"
                 f"  overhead+imbalance {s['overhead_and_imbalance_s']:5.1f} s")
    if "ratio_to_local" in s:
        line += f"  x{s['ratio_to_local']:.2f} of local"
    print(line, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--set", choices=sorted(SETS), default="text")
    ap.add_argument("--no-ocr", action="store_true")
    ap.add_argument("--fake", action="store_true", help="hash embedders: parsing and engine cost only")
    ap.add_argument("--modes", default="local,ray1,ray2")
    ap.add_argument("--json", metavar="OUT", help="write every run and the summaries here")
    args = ap.parse_args()
    from retrieval.ray_engine import RayEngine, RaySettings
    from tests.ray_cluster import RayCluster

    files = [str(PDFS / f) for f in SETS[args.set]]
    settings = KBSettings(ocr=not args.no_ocr)
    if args.fake:
        settings = replace(settings, text_model="fake", image_model="fake", tag_images=False)
    results: dict[str, Any] = {"set": args.set, "files": len(files), "settings": repr(settings), "runs": {}}
    summaries = []
    local_rate = None
    for mode in args.modes.split(","):
        cluster = None
        try:
            engine = None
            if mode != "local":
                cluster = RayCluster(cpus_per_node=2).start()
                if mode == "ray2":
                    cluster.add_node("127.0.0.3")
                cluster.wait_nodes(2 if mode == "ray2" else 1)
                engine = RayEngine(RaySettings.from_uri(cluster.uri))
            rows = [one_run(files, settings, engine) for _ in range(args.runs)]
        finally:
            if cluster is not None:
                cluster.stop()
        results["runs"][mode] = rows
        summary = summarise(mode, rows, local_rate)
        local_rate = local_rate or (summary["pages_per_s"] if mode == "local" else None)
        summaries.append(summary)
        print_row(summary)
    results["summaries"] = summaries
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
