"""Server-Sent Events: an answer stream run in its own thread (holding the read lock) and relayed as SSE frames;
a client that goes away cancels it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from assistant.server.http import error_status

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_END = object()


class SseRender(Protocol):
    """How answer-stream events become SSE text: our named events, or OpenAI's `chat.completion.chunk`s."""

    def event(self, event: Any) -> str: ...  # '' sends nothing

    def error(self, status: int, message: str) -> str: ...


class NamedEvents:
    """`event: sources|token|answer|error` frames with the event's JSON."""

    def event(self, event: Any) -> str:
        return sse_frame(event.type, event.to_json())

    def error(self, status: int, message: str) -> str:
        return sse_frame("error", {"type": "error", "status": status, "error": message})


async def sse_stream(start: Callable[[], Any], lock: threading.Lock,
                     after: Callable[[], None] = lambda: None, render: SseRender | None = None) -> AsyncIterator[str]:
    """Run the answer stream in its own thread (holding the read lock until it ends) and relay its events as
    SSE frames. When the client goes away the stream is cancelled; the thread finishes and frees the lock.
    `after` runs in that thread once the stream is over (e.g. removing a temporary query image)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    gone = threading.Event()

    def put(item: Any) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, item)

    threading.Thread(target=_pump, args=(start, lock, gone, put, after, render or NamedEvents()), daemon=True,
                     name="citeline-sse").start()
    try:
        while (item := await queue.get()) is not _END:
            if item:
                yield item
    finally:
        gone.set()


def _pump(start: Callable[[], Any], lock: threading.Lock, gone: threading.Event, put: Callable[[Any], None],
          after: Callable[[], None], render: SseRender) -> None:
    try:
        with lock:
            stream = start()
            for event in stream.events():
                if gone.is_set():
                    stream.cancel()
                put(render.event(event))
    except Exception as exc:  # the status line is gone: report in-band
        status, message = error_status(exc)
        put(render.error(status, message))
    finally:
        after()
        put(_END)


def sse_frame(event: str, data: dict[str, Any]) -> str:
    import json

    return f"event: {event}\ndata: {json.dumps(data)}\n\n"

