"""The OpenAI-compatible generator against a real server on loopback: llama-cpp-python's own
`python -m llama_cpp.server` serving the offline SmolLM2 GGUF."""

from __future__ import annotations

import math
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from assistant.chat_models import resolve_gguf
from assistant.generators import build_generator, generate
from assistant.prompting import build_messages
from assistant.types import Sampling, Source
from tests.conftest import free_port

pytestmark = pytest.mark.llm


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("llama_cpp.server.app",
                        reason="needs llama-cpp-python[server] (sse-starlette, starlette-context)")
    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(resolve_gguf("smollm2")), "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", "1024", "--n_threads", "2", "--model_alias", "smollm2"]
    log = tmp_path_factory.mktemp("server") / "server.log"
    # the server logs verbosely: to a file, since an unread pipe fills up and blocks it
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited: {log.read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail("llama_cpp.server did not start within 120 s")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


MESSAGES = build_messages("How long does the battery last?",
                          [Source(1, "manual.pdf", "d", 3, "text", "The Aurora X2 battery lasts 14 hours.")])


def test_streams_from_a_real_openai_compatible_server(server: str):
    gen = build_generator(f"openai:smollm2@{server}", env={})
    pieces = list(gen.stream(MESSAGES, (), Sampling(max_tokens=24, seed=1)))
    assert len(pieces) > 1 and "".join(pieces).strip()
    assert generate(gen, MESSAGES, (), Sampling(max_tokens=24, seed=1)) == "".join(pieces)  # greedy: same text


def test_cancel_closes_the_connection(server: str):
    gen = build_generator(f"openai:smollm2@{server}", env={})
    stream = gen.stream(MESSAGES, (), Sampling(max_tokens=200))
    next(stream)
    stream.close()
    assert generate(gen, MESSAGES, (), Sampling(max_tokens=4))  # the server still answers


def test_judges_yes_no_through_a_real_openai_compatible_server(server: str):
    from assistant.generators import Judge

    gen = build_generator(f"openai:smollm2@{server}", env={})
    assert isinstance(gen, Judge)
    first = gen.yes_no(MESSAGES[:-1] + [{"role": "user", "content": "Is the sky blue on a clear day? Yes or No."}])
    again = gen.yes_no(MESSAGES[:-1] + [{"role": "user", "content": "Is the sky blue on a clear day? Yes or No."}])
    assert math.isfinite(first) and first == pytest.approx(again, abs=1e-3)  # greedy logits: reproducible
