"""The OpenAI-compatible chat endpoint over real loopback HTTP: the official `openai` client against `citeline`'s
own server (uvicorn), answering with the extractive model over a KB built with the package's fake embedders;
plus raw HTTP for the chunk format Open WebUI reads and for every kind of bad request."""

from __future__ import annotations

import base64
import io
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

openai = pytest.importorskip("openai")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from assistant.config import Settings  # noqa: E402
from assistant.generators.fake import ScriptedGenerator  # noqa: E402
from assistant.sdk import Citeline  # noqa: E402
from assistant.server.app import create_app  # noqa: E402
from assistant.types import ABSTAIN_TEXT  # noqa: E402
from retrieval.settings import KBSettings  # noqa: E402
from tests.conftest import ROOT, citeline_serve, make_pdf, serving  # noqa: E402

KEY = "openai-compat-key"
FAKE_KB = KBSettings(text_model="fake", image_model="fake", tag_images=False)
AURORA = ["The Aurora X2 battery lasts 14 hours of continuous playback.\n\nCharging the Aurora X2 takes 90 minutes.",
          "The Aurora X2 warranty covers manufacturing defects for two years."]
BOREALIS = ["The Borealis Z battery lasts 9 hours of continuous playback.\n\nCharging the Borealis Z takes 3 hours.",
            "The Borealis Z is rated IP67 for water resistance."]
QUESTION = "How long does the Aurora X2 battery last?"


@pytest.fixture(scope="module")
def sdk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Citeline]:
    root = tmp_path_factory.mktemp("openai-compat")
    docs = root / "docs"
    docs.mkdir()
    make_pdf(docs / "aurora.pdf", AURORA)
    make_pdf(docs / "borealis.pdf", BOREALIS)
    with Citeline(root / "kb", settings=Settings(kb_dir=root / "kb", kb=FAKE_KB, model="extractive")) as sdk:
        sdk.ingest(docs)
        yield sdk


@pytest.fixture(scope="module")
def served_key() -> str:
    return KEY


@pytest.fixture(scope="module")
def client(base: str) -> Iterator[Any]:
    with openai.OpenAI(base_url=f"{base}/v1", api_key=KEY, max_retries=0, timeout=60) as c:
        yield c


@pytest.fixture
def http(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {KEY}"}) as c:
        yield c


def _png(color: tuple[int, int, int] = (200, 30, 30)) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), color).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _ask(client: Any, content: Any, model: str = "citeline", **kw: Any) -> Any:
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": content}], **kw)


# -- models -------------------------------------------------------------------------------------------------
def test_models_lists_the_kb_with_its_generators(client: Any):
    ids = [m.id for m in client.models.list()]
    assert ids[0] == "citeline" and {"citeline:extractive", "citeline:qwen", "citeline:smollm2"} <= set(ids)
    assert all(m.owned_by == "citeline" for m in client.models.list())


# -- answers --------------------------------------------------------------------------------------------------
def test_plain_answer_keeps_markers_and_lists_sources(client: Any):
    reply = _ask(client, QUESTION)
    assert reply.object == "chat.completion" and reply.model == "citeline" and reply.id.startswith("chatcmpl-")
    (choice,) = reply.choices
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    text = choice.message.content
    body, _, sources = text.partition("\n\nSources:\n")
    assert "14 hours" in body and "[1]" in body, text
    assert sources.splitlines()[0] == "- [1] aurora.pdf, page 1", text
    citations = reply.citations  # the structured field, beside OpenAI's own
    first = citations[0]
    assert first["doc"] == "aurora.pdf" and first["page"] == 1 and first["verdict"] == "supported"
    assert "14 hours" in first["quote"] and len(first["bbox"]) == 4
    assert reply.citeline["abstained"] is False and reply.citeline["query"] == QUESTION


def test_streamed_answer_equals_the_plain_one(client: Any):
    plain = _ask(client, QUESTION).choices[0].message.content
    chunks = list(_ask(client, QUESTION, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert content == plain
    assert len([c for c in chunks if c.choices[0].delta.content]) > 3  # deltas, not one blob
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop" and last.citations[0]["doc"] == "aurora.pdf"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])


def test_history_rewrites_the_follow_up(client: Any):
    first = _ask(client, "How long does the Borealis Z battery last?").choices[0].message.content
    assert "9 hours" in first
    follow_up = "And how long does charging it take?"
    messages = [{"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "How long does the Borealis Z battery last?"},
                {"role": "assistant", "content": first},
                {"role": "user", "content": follow_up}]
    reply = client.chat.completions.create(model="citeline", messages=messages)
    assert "Borealis" in reply.citeline["query"] and "Sources" not in reply.citeline["query"]
    text = reply.choices[0].message.content
    assert text.startswith("Charging the Borealis Z takes 3 hours [1]."), text
    assert "\n\nSources:\n- [1] borealis.pdf, page 1" in text
    alone = _ask(client, follow_up)  # the same words without the history: nothing to fold in
    assert alone.citeline["query"] == follow_up


def test_abstention_is_an_ordinary_message_with_the_closest_sources(client: Any):
    reply = _ask(client, "Which opera did Verdi compose in 1853?")
    text = reply.choices[0].message.content
    assert text.startswith(ABSTAIN_TEXT) and "\n\nClosest sources:\n- [1] " in text, text
    assert reply.choices[0].finish_reason == "stop" and reply.citations == []
    assert reply.citeline["abstained"] is True


def test_image_part_is_the_query_image(client: Any, sdk: Citeline):
    vision = sdk._generators["fake-vision"] = ScriptedGenerator(
        "The Aurora X2 battery lasts 14 hours of continuous playback [1].", supports_images=True,
        name="fake-vision")
    assert "citeline:fake-vision" in [m.id for m in client.models.list()]
    content = [{"type": "text", "text": QUESTION}, {"type": "image_url", "image_url": {"url": _png()}}]
    reply = _ask(client, content, model="citeline:fake-vision")
    assert reply.model == "citeline:fake-vision" and "14 hours" in reply.choices[0].message.content
    (call,) = vision.calls
    shown = Path(call.images[0])
    assert shown.name.startswith("citeline-query-") and shown.suffix == ".png"  # the user's picture first
    assert not shown.exists()  # the temporary copy is gone once the answer is out


def test_sampling_fields_reach_the_generator_and_unknown_fields_are_ignored(client: Any, sdk: Citeline):
    scripted = sdk._generators["fake-sampling"] = ScriptedGenerator(
        "The Aurora X2 battery lasts 14 hours of continuous playback [1].", name="fake-sampling")
    reply = _ask(client, QUESTION, model="citeline:fake-sampling", temperature=0.7, top_p=0.5, max_tokens=33,
                 seed=7, stop=["END"], frequency_penalty=0.5, user="someone",
                 extra_body={"an_unknown_field": {"nested": True}})
    assert "14 hours" in reply.choices[0].message.content
    sampling = scripted.calls[-1].sampling
    assert (sampling.temperature, sampling.top_p, sampling.max_tokens, sampling.seed, sampling.stop) == (
        0.7, 0.5, 33, 7, ("END",))


def test_wrong_key_is_an_authentication_error(base: str):
    with openai.OpenAI(base_url=f"{base}/v1", api_key="wrong", max_retries=0, timeout=30) as bad:
        with pytest.raises(openai.AuthenticationError) as caught:
            _ask(bad, QUESTION)
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()
    assert caught.value.status_code == 401
    assert caught.value.body["type"] == "authentication_error" and "API key" in caught.value.body["message"]


# -- the wire format ------------------------------------------------------------------------------------------
def test_raw_stream_is_the_chunk_format_open_webui_reads(http: httpx.Client):
    body = {"model": "citeline", "stream": True, "messages": [{"role": "user", "content": QUESTION}]}
    with http.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines), lines[:3]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    deltas = [c["choices"][0]["delta"].get("content") for c in chunks[1:-1]]
    assert deltas and all(isinstance(d, str) and d for d in deltas)
    assert "14 hours" in "".join(deltas) and "Sources:" in "".join(deltas)
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop", "logprobs": None}
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"} and len({c["id"] for c in chunks}) == 1


USER = {"role": "user", "content": QUESTION}


@pytest.mark.parametrize("raw, param", [
    (b"{not json", None),
    (b"[1, 2]", None),
    (json.dumps({"model": "citeline"}).encode(), "messages"),
    (json.dumps({"model": "citeline", "messages": []}).encode(), "messages"),
    (json.dumps({"model": "citeline", "messages": "hello"}).encode(), "messages"),
    (json.dumps({"messages": [USER]}).encode(), "model"),
    (json.dumps({"model": "citeline", "messages": [USER], "temperature": "hot"}).encode(), "temperature"),
    (json.dumps({"model": "citeline", "messages": [USER], "temperature": 9}).encode(), "temperature"),
    (json.dumps({"model": "citeline", "messages": [USER], "stream": "yes"}).encode(), "stream"),
    (json.dumps({"model": "citeline", "messages": [USER], "max_tokens": 0}).encode(), "max_tokens"),
    (json.dumps({"model": "citeline", "messages": [USER], "n": 3}).encode(), "n"),
    (json.dumps({"model": "citeline", "messages": [{"role": "wizard", "content": "x"}]}).encode(),
     "messages[0].role"),
    (json.dumps({"model": "citeline", "messages": [{"role": "user", "content": 42}]}).encode(),
     "messages[0].content"),
    (json.dumps({"model": "citeline", "messages": [USER, {"role": "assistant", "content": "x"}]}).encode(),
     "messages[1].role"),
    (json.dumps({"model": "citeline", "messages": [{"role": "user", "content": "  "}]}).encode(),
     "messages[0].content"),
    (json.dumps({"model": "gpt-4o", "messages": [USER]}).encode(), "model"),
    (json.dumps({"model": "citeline:gguf:/etc/passwd", "messages": [USER]}).encode(), "model"),
])
def test_bad_requests_are_400_in_openai_shape(http: httpx.Client, raw: bytes, param: str | None):
    r = http.post("/v1/chat/completions", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
    assert error["message"] and error["param"] == param, error


@pytest.mark.parametrize("url, code", [
    ("data:image/png;base64," + base64.b64encode(b"this is not an image").decode(), "invalid_image"),
    ("data:image/png;base64,%%%", "invalid_image"),
    ("https://example.com/cat.png", "invalid_image_url"),
])
def test_an_image_part_that_is_not_an_image_is_400(client: Any, url: str, code: str):
    content = [{"type": "text", "text": QUESTION}, {"type": "image_url", "image_url": {"url": url}}]
    with pytest.raises(openai.BadRequestError) as caught:
        _ask(client, content)
    assert caught.value.body["param"] == "messages[0].content[1].image_url"
    assert caught.value.body["code"] == code and caught.value.body["message"]


def test_unknown_model_through_the_client(client: Any):
    with pytest.raises(openai.BadRequestError) as caught:
        _ask(client, QUESTION, model="no-such-model")
    assert caught.value.body["code"] == "model_not_found" and "GET /v1/models" in caught.value.body["message"]


# -- the real command --------------------------------------------------------------------------------------
def test_citeline_serve_subprocess_with_the_openai_client_and_a_job(tmp_path: Path):
    """`citeline serve --model extractive --ingest-root DIR` as a user starts it: chat with the official client,
    then ingest a server folder as a job and ask about what it added."""
    kb, docs, more = tmp_path / "kb", tmp_path / "docs", tmp_path / "shared" / "more"
    docs.mkdir()
    more.mkdir(parents=True)
    make_pdf(docs / "aurora.pdf", AURORA)
    make_pdf(more / "cirrus.pdf", ["The Cirrus K1 battery lasts 21 hours of continuous playback."])
    Citeline(kb, settings=Settings(kb_dir=kb, kb=FAKE_KB, model="extractive")).ingest(docs).close()
    env = {**os.environ, "CITELINE_SERVER_KEY": KEY, "PYTHONPATH": str(ROOT)}
    args = ["--kb", str(kb), "--model", "extractive", "--ingest-root", str(tmp_path / "shared")]
    with citeline_serve(args, env, tmp_path / "serve.log") as base, \
            openai.OpenAI(base_url=f"{base}/v1", api_key=KEY, max_retries=0, timeout=60) as client:
        assert "citeline:extractive" in [m.id for m in client.models.list()]
        assert "14 hours" in _ask(client, QUESTION).choices[0].message.content
        headers = {"Authorization": f"Bearer {KEY}"}
        r = httpx.post(f"{base}/v1/ingest", json={"paths": [str(more)]}, headers=headers, timeout=30)
        assert r.status_code == 202, r.text
        job = r.json()
        for _ in range(600):  # at most ~60 s
            job = httpx.get(f"{base}/v1/jobs/{job['id']}", headers=headers, timeout=10).json()
            if job["state"] in ("done", "failed"):
                break
            time.sleep(0.1)
        assert job["state"] == "done" and job["report"]["totals"]["ingested"] == 1, job
        outside = httpx.post(f"{base}/v1/ingest", json={"paths": [str(docs)]}, headers=headers, timeout=30)
        assert outside.status_code == 400 and "outside the folders" in outside.json()["error"]
        text = _ask(client, "How long does the Cirrus K1 battery last?").choices[0].message.content
        assert "21 hours" in text and "- [1] cirrus.pdf, page 1" in text, text


def test_a_body_over_the_limit_is_413_in_openai_shape(sdk: Citeline):
    from assistant.server.app import ServerLimits

    app = create_app(sdk, api_key=None, limits=ServerLimits(max_request_bytes=2000))
    with (serving(app) as url, openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0) as small,
          pytest.raises(openai.APIStatusError) as caught):
        _ask(small, QUESTION + " " + "padding " * 400)
    assert caught.value.status_code == 413 and caught.value.body["code"] == "request_too_large"


def test_a_client_leaving_a_stream_cancels_the_answer_and_frees_the_server(http: httpx.Client, sdk: Citeline):
    from tests.test_server import EndlessGenerator

    endless = sdk._generators["endless"] = EndlessGenerator()
    body = {"model": "citeline:endless", "stream": True, "messages": [{"role": "user", "content": QUESTION}]}
    with http.stream("POST", "/v1/chat/completions", json=body) as r:
        first = next(line for line in r.iter_lines() if line)
        assert json.loads(first[6:])["choices"][0]["delta"]["role"] == "assistant"
        deadline = time.monotonic() + 30
        while endless.pieces == 0:  # the model is generating: hang up
            assert time.monotonic() < deadline, "the model never started"
            time.sleep(0.01)
    # an endless answer holds the read lock until it is cancelled: this answer comes only if it was
    reply = http.post("/v1/chat/completions", json={**body, "model": "citeline", "stream": False}, timeout=30)
    assert reply.status_code == 200 and "14 hours" in reply.json()["choices"][0]["message"]["content"]
    assert endless.closed.is_set(), "the abandoned stream was never closed"
