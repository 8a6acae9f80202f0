"""Background ingest jobs over real loopback HTTP: `POST /v1/ingest` answers 202 with a job at once, the job runs
in the server's writer thread (real parser processes, SQLite, FAISS), `GET /v1/jobs/{id}` shows its progress and
report, a second job queues behind the first, and a client that leaves stops nothing.

The text embedder is the package's hash embedder behind a gate the test opens and closes, so "the first job is
still running" is a fact the test arranges, not a race it hopes to win."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from assistant.config import Settings  # noqa: E402
from assistant.jobs import JobQueue  # noqa: E402
from assistant.sdk import Citeline  # noqa: E402
from assistant.server.app import create_app  # noqa: E402
from retrieval.fakes import HashEmbedder  # noqa: E402
from retrieval.lock import WriterLock  # noqa: E402
from retrieval.settings import KBSettings, default_model_factory  # noqa: E402
from tests.conftest import make_pdf, serving  # noqa: E402

FAKE_KB = KBSettings(text_model="fake", image_model="fake", tag_images=False)
PRODUCTS = ["Aurora", "Borealis", "Cirrus", "Draco"]
WAIT_S = 120.0  # a bound on every wait; never an assertion about speed


class GatedEmbedder(HashEmbedder):
    """The hash embedder, but embedding waits while the gate is closed (bounded)."""

    def __init__(self, gate: threading.Event) -> None:
        super().__init__()
        self.gate = gate
        self.waiting = threading.Event()  # set while an embed call waits at the closed gate

    def embed(self, texts: Any) -> np.ndarray:
        if not self.gate.is_set():
            self.waiting.set()
            assert self.gate.wait(WAIT_S), "the test never opened the gate"
            self.waiting.clear()
        return super().embed(texts)


@pytest.fixture(scope="module")
def gate() -> threading.Event:
    event = threading.Event()
    event.set()
    return event


@pytest.fixture(scope="module")
def embedder(gate: threading.Event) -> GatedEmbedder:
    return GatedEmbedder(gate)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("jobs")


@pytest.fixture(scope="module")
def folder(root: Path) -> Path:
    """Four generated two-page PDFs and one that only claims to be a PDF."""
    docs = root / "allowed" / "manuals"
    docs.mkdir(parents=True)
    for i, name in enumerate(PRODUCTS):
        make_pdf(docs / f"{name.lower()}.pdf", [f"The {name} battery lasts {10 + i} hours of playback.",
                                                f"The {name} warranty covers {i + 1} years."])
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\nthis is not a PDF body\n")
    return docs


@pytest.fixture(scope="module")
def sdk(root: Path, embedder: GatedEmbedder) -> Iterator[Citeline]:
    def factory(role: str, spec: str) -> Any:
        return embedder if (role, spec) == ("text", "fake") else default_model_factory(role, spec)

    kb = root / "kb"
    with Citeline(kb, settings=Settings(kb_dir=kb, kb=FAKE_KB, model="extractive"), model_factory=factory) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def base(sdk: Citeline, root: Path) -> Iterator[str]:
    with serving(create_app(sdk, api_key=None, ingest_roots=[root / "allowed"])) as url:
        yield url


@pytest.fixture
def client(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=60) as c:
        yield c


def poll(client: httpx.Client, job_id: str, until: tuple[str, ...] = ("done", "failed")) -> list[dict[str, Any]]:
    """Every snapshot of the job until it reaches one of `until` (bounded)."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        r = client.get(f"/v1/jobs/{job_id}")
        assert r.status_code == 200, r.text
        seen.append(r.json())
        if seen[-1]["state"] in until:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not reach {until} within {WAIT_S} s: {seen[-1]}")


def wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def note(client: httpx.Client, name: str, text: str) -> httpx.Response:
    return client.post("/v1/ingest", files=[("files", (name, text.encode(), "text/markdown"))])


# -- a folder, in the background -----------------------------------------------------------------------------
def test_a_folder_job_reports_progress_per_file_errors_and_the_report(client: httpx.Client, folder: Path):
    r = client.post("/v1/ingest", json={"paths": [str(folder)]})
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["state"] in ("queued", "running") and job["report"] is None
    assert r.headers["location"] == f"/v1/jobs/{job['id']}"
    seen = poll(client, job["id"])
    final = seen[-1]
    assert final["state"] == "done", final
    done = [s["progress"]["files_done"] for s in seen]
    assert done == sorted(done)  # progress only goes forward
    assert final["progress"]["files_done"] == final["progress"]["files_total"] == 5
    assert final["progress"]["pages"] == 8  # four two-page PDFs; the broken one has none
    (error,) = final["errors"]
    assert Path(error["path"]).name == "broken.pdf" and error["error"]
    assert final["progress"]["failed"] == [error["path"]]
    totals = final["report"]["totals"]
    assert (totals["ingested"], totals["failed"], totals["pages"]) == (4, 1, 8)
    assert final["message"].startswith("done: 4 ingested") and final["finished"] >= final["started"]
    listed = client.get("/v1/jobs").json()
    assert listed["object"] == "list" and job["id"] in [j["id"] for j in listed["data"]]
    hits = client.post("/v1/search", json={"query": "Cirrus battery hours"}).json()["hits"]
    assert hits and hits[0]["doc"] == "cirrus.pdf"  # the job's work is in the KB, readable at once


def test_a_second_job_queues_behind_the_first(client: httpx.Client, gate: threading.Event,
                                              embedder: GatedEmbedder):
    gate.clear()
    try:
        first = note(client, "first-queued.md", "# First\n\nThe first note mentions a zeppelin.\n").json()
        wait_for(embedder.waiting.is_set, "the first job to reach the embedder")
        second = note(client, "second-queued.md", "# Second\n\nThe second note mentions a submarine.\n")
        assert second.status_code == 202, second.text
        queued = second.json()
        assert queued["state"] == "queued" and queued["queued_behind"] == first["id"]
        assert queued["message"] == f"queued behind job {first['id']}"
        running = client.get(f"/v1/jobs/{first['id']}").json()
        assert running["state"] == "running" and running["message"].endswith("pages")
        assert client.get(f"/v1/jobs/{queued['id']}").json()["state"] == "queued"  # still waiting its turn
    finally:
        gate.set()
    assert poll(client, first["id"])[-1]["state"] == "done"
    last = poll(client, queued["id"])[-1]
    assert last["state"] == "done" and last["report"]["totals"]["ingested"] == 1 and last["queued_behind"] is None


def test_a_client_that_leaves_does_not_stop_the_job(base: str, client: httpx.Client, folder: Path,
                                                    gate: threading.Event, embedder: GatedEmbedder, root: Path):
    extra = root / "allowed" / "late"
    extra.mkdir()
    make_pdf(extra / "late.pdf", ["The Equinox battery lasts 30 hours of playback."])
    body = json.dumps({"paths": [str(extra)]}).encode()
    host, port = base.removeprefix("http://").split(":")
    gate.clear()
    try:
        with socket.create_connection((host, int(port)), timeout=10) as sock:  # waits for the report...
            sock.sendall(b"POST /v1/ingest?wait=true HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            wait_for(embedder.waiting.is_set, "the job to reach the embedder")
        # ...and leaves while the job is running
        (job,) = [j for j in client.get("/v1/jobs").json()["data"] if j["paths"] == [str(extra.resolve())]]
        assert job["state"] == "running"
    finally:
        gate.set()
    final = poll(client, job["id"])[-1]
    assert final["state"] == "done" and final["report"]["totals"]["ingested"] == 1
    hits = client.post("/v1/search", json={"query": "Equinox battery"}).json()["hits"]
    assert hits and hits[0]["doc"] == "late.pdf"


def test_wait_true_answers_with_the_report(client: httpx.Client):
    r = client.post("/v1/ingest?wait=true", files=[("files", ("waited.md", b"# W\n\nA note about kayaks.\n",
                                                               "text/markdown"))])
    assert r.status_code == 200, r.text
    assert r.json()["totals"]["ingested"] == 1 and r.json()["job"].startswith("job-")


# -- bad input ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("body, needle", [
    ({"paths": ["../../etc"]}, "`..`"),
    ({"paths": ["/etc"]}, "outside the folders"),
    ({"paths": ["/"]}, "outside the folders"),
    ({"paths": ["no-such-folder"]}, "no such file"),
    ({"paths": []}, "paths"),
    ({"paths": "manuals"}, "paths"),
    ({"paths": [3]}, "paths"),
    ({"paths": ["x"], "surprise": 1}, "surprise"),
])
def test_bad_paths_are_400_and_make_no_job(client: httpx.Client, body: dict[str, Any], needle: str):
    before = len(client.get("/v1/jobs").json()["data"])
    r = client.post("/v1/ingest", json=body)
    assert r.status_code == 400 and needle in r.json()["error"], r.text
    assert len(client.get("/v1/jobs").json()["data"]) == before


def test_a_symlink_out_of_an_allowed_root_is_400(client: httpx.Client, root: Path, tmp_path: Path):
    (tmp_path / "secret.md").write_text("# Secret\n\nNot for the KB.\n")
    link = root / "allowed" / "sneaky"
    link.symlink_to(tmp_path, target_is_directory=True)
    r = client.post("/v1/ingest", json={"paths": [str(link)]})
    assert r.status_code == 400 and "outside the folders" in r.json()["error"]


def test_unknown_job_is_404(client: httpx.Client):
    r = client.get("/v1/jobs/job-nope")
    assert r.status_code == 404 and "GET /v1/jobs" in r.json()["error"]


def test_another_writer_process_is_409_at_once(client: httpx.Client, sdk: Citeline, folder: Path):
    with WriterLock(sdk.kb_dir):
        r = client.post("/v1/ingest", json={"paths": [str(folder)]})
    assert r.status_code == 409 and "being written by pid" in r.json()["error"]


# -- the queue itself -----------------------------------------------------------------------------------------
def test_a_failed_job_says_why_and_the_next_one_runs(tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nThe lighthouse keeper logs the weather.\n")
    kb = tmp_path / "kb"
    with Citeline(kb, settings=Settings(kb_dir=kb, kb=FAKE_KB, model="extractive")) as sdk:
        sdk.ingest(docs)  # the KB exists; now another "process" holds its writer lock
        queue = JobQueue(lambda paths, prune, progress: sdk.ingest(*paths, prune=prune, progress=progress)
                         .last_report)
        with WriterLock(kb):
            blocked = queue.wait(queue.submit([str(docs)]).id, timeout=WAIT_S)
        assert blocked is not None and blocked.state == "failed" and "being written by" in (blocked.error or "")
        assert blocked.to_json()["message"].startswith("failed: ")
        (docs / "b.md").write_text("# B\n\nThe ferry leaves at noon.\n")
        after = queue.wait(queue.submit([str(docs)]).id, timeout=WAIT_S)
        assert after is not None and after.state == "done"
        assert after.report is not None and after.report["totals"]["ingested"] == 1
        queue.close()
        with pytest.raises(RuntimeError, match="closed"):
            queue.submit([str(docs)])


def test_the_ui_queue_is_one_per_sdk_and_ingests(tmp_path: Path):
    from assistant.jobs import ingest_queue

    docs = tmp_path / "docs"
    docs.mkdir()
    make_pdf(docs / "guide.pdf", ["The Fjord kettle boils a litre in four minutes."])
    kb = tmp_path / "kb"
    with Citeline(kb, settings=Settings(kb_dir=kb, kb=FAKE_KB, model="extractive")) as sdk:
        queue = ingest_queue(sdk)
        assert ingest_queue(sdk) is queue
        job = queue.wait(queue.submit([str(docs)]).id, timeout=WAIT_S)
        assert job is not None and job.state == "done" and job.pages == 1
        assert sdk.search("Fjord kettle")[0].doc_name == "guide.pdf"
