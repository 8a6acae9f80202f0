"""One Ray ingest on the driver: ship files, parse them as tasks, embed them in the actor pool, hand them back.

Three stages are in flight at once, bounded by `RaySettings.in_flight` files and `max_bytes_in_flight` bytes:
parse tasks (any node with a free CPU), parsed documents waiting for an actor (each actor is given at most two,
so no document queues behind a slow one), and embedding calls. Results are returned in the order they finish.
A parse result travels from the parsing node to the embedding actor without passing through the driver.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ingest.errors import FileError, FileVanished
from ingest.isolation import Limits, size_error
from ingest.parser_pool import ParseJob
from ingest.protocols import ParseOptions
from ingest.shipping import ShippedFile, ShippedParse, parse_shipped, write_assets
from retrieval.embedding import Prepared, Vectors
from retrieval.errors import EngineError
from retrieval.ingest_engine import ReadyDocument
from retrieval.kb import VERSION
from retrieval.ray_engine import RaySettings, RayStats
from retrieval.remote_embed import EmbeddedDocument, EmbedWorker, WorkerInfo
from retrieval.settings import KBSettings

PER_ACTOR = 2  # embedding calls queued on one actor: one running, one ready to start
FETCH_TIMEOUT_S = 120.0  # fetching a finished result; a node that died meanwhile fails it sooner
TOP_UP_EVERY_S = 10.0  # how often lost embedding actors are replaced on nodes that joined since


def parse_task(file: ShippedFile, options: ParseOptions, limits: Limits) -> ShippedParse:
    """The Ray task: `parse_shipped`, tagged with the node that ran it."""
    import ray

    return replace(parse_shipped(file, options, limits), node=ray.util.get_node_ip_address())


class RayEmbedWorker(EmbedWorker):
    """The Ray actor: an `EmbedWorker` named after its node."""

    def __init__(self, settings: KBSettings) -> None:
        import ray

        super().__init__(settings, node=ray.util.get_node_ip_address())


@dataclass
class _File:
    job: ParseJob
    size: int
    attempt: int = 1
    parse_ref: Any = None
    actor: Any = None
    since: float = 0.0  # when its current stage (parse or embed) was handed to the cluster


class RayRun:
    def __init__(self, ray: Any, settings: RaySettings, options: ParseOptions, kb: KBSettings,
                 stats: RayStats) -> None:
        self.ray, self.settings, self.options, self.kb, self.stats = ray, settings, options, kb, stats
        self.limits = kb.limits
        self.errors = ray.exceptions
        cpus = _live_cpus(ray)
        self.wanted = settings.embedders or max(1, len(_embedding_nodes(ray, settings.embedder_cpus)))
        if cpus < self.wanted * settings.embedder_cpus + settings.parser_cpus:
            raise EngineError(f"the Ray cluster at {settings.address} has {cpus:g} CPUs: {self.wanted} embedding "
                              f"actors of {settings.embedder_cpus:g} CPU leave no {settings.parser_cpus:g} CPU for "
                              "parsing; add nodes or CPUs, or lower ?embedders=N / ?embedder_cpus=X")
        self.max_in_flight = settings.in_flight or max(4, int(2 * cpus))
        self._parse = ray.remote(parse_task).options(num_cpus=settings.parser_cpus, max_retries=1)
        self._actor_class = ray.remote(RayEmbedWorker)
        self.actors: dict[Any, int] = {}  # live actor -> embedding calls queued on it
        self._served: dict[Any, int] = {}  # actor -> files given to it in this run
        self.created = 0
        self.parsing: dict[Any, _File] = {}
        self.parsed: deque[_File] = deque()
        self.embedding: dict[Any, _File] = {}
        self.bytes_in_flight = 0
        self._last_top_up = time.monotonic()

    # -- the loop ---------------------------------------------------------------------------------------
    def results(self, jobs: Sequence[ParseJob]) -> Iterator[ReadyDocument]:
        pending = deque(_File(j, j.stat.st_size) for j in sorted(jobs, key=lambda j: -j.stat.st_size))
        started = time.perf_counter()
        ready_refs = self._start_actors()
        yield from self._ship(pending)  # parsing starts while the actors load their models
        self._await_ready(ready_refs)
        self.stats.ready_s = time.perf_counter() - started
        progress = time.monotonic()
        while pending or self.parsing or self.parsed or self.embedding:
            if time.monotonic() - self._last_top_up > TOP_UP_EVERY_S:
                self._top_up()
            yield from self._ship(pending)
            self._assign()
            done = self._wait()
            if done:
                progress = time.monotonic()
            else:
                yield from self._expire(pending)
                if time.monotonic() - progress > self.settings.stall_timeout_s:
                    raise self._stalled()
            for ref in done:
                if ref in self.parsing:
                    self.parsed.append(self.parsing.pop(ref))
                else:
                    yield from self._finish(ref, self.embedding.pop(ref), pending)

    def close(self) -> None:
        """Cancel what is still running (an interrupted ingest) and release the actors."""
        for ref in self.parsing:
            with contextlib.suppress(Exception):  # already finished, or its worker is gone
                self.ray.cancel(ref, force=True)
        for actor in list(self.actors):
            self.ray.kill(actor)
        self.actors.clear()

    def _wait(self) -> list[Any]:
        refs = list(self.parsing) + list(self.embedding)
        if not refs:
            return []
        ready, rest = self.ray.wait(refs, num_returns=1, timeout=1.0, fetch_local=False)
        if ready and rest:
            more, _ = self.ray.wait(rest, num_returns=len(rest), timeout=0, fetch_local=False)
            ready += more
        return ready

    # -- shipping ---------------------------------------------------------------------------------------
    def _ship(self, pending: deque[_File]) -> Iterator[ReadyDocument]:
        while pending and self._room_for(pending[0]):
            file = pending.popleft()
            failure = self._submit_parse(file)
            if failure is not None:
                yield ReadyDocument(file.job, failure)

    def _room_for(self, file: _File) -> bool:
        busy = len(self.parsing) + len(self.parsed) + len(self.embedding)
        if busy >= self.max_in_flight:
            return False
        return busy == 0 or self.bytes_in_flight + file.size <= self.settings.max_bytes_in_flight

    def _submit_parse(self, file: _File) -> FileError | None:
        """Read and ship one file; the per-file error when it cannot be shipped (same checks as a local ingest)."""
        path = file.job.path
        too_big = size_error(path, file.size, self.limits)
        if too_big is not None:
            return too_big
        t0 = time.perf_counter()
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            return FileVanished(path)
        self.stats.read_s += time.perf_counter() - t0
        if hashlib.sha256(data).hexdigest() != file.job.sha256:
            return FileError(f"{path} changed while the ingest ran; nothing was stored for it (ingest it again)")
        file.parse_ref = self._parse.remote(ShippedFile(path, file.job.sha256, data), self.options, self.limits)
        self.parsing[file.parse_ref] = file
        file.since = time.monotonic()
        self.bytes_in_flight += file.size
        return None

    # -- embedding --------------------------------------------------------------------------------------
    def _start_actors(self) -> list[Any]:
        """One actor per node that can hold one, pinned there (soft: a node gone by then lets it go elsewhere):
        SPREAD alone is a preference that parse tasks, started meanwhile, can defeat by filling a node's CPUs,
        leaving both actors on the other node. Actors beyond one per node are spread."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        nodes = _embedding_nodes(self.ray, self.settings.embedder_cpus)
        refs = []
        while len(self.actors) < self.wanted:
            strategy: Any = "SPREAD"
            if len(self.actors) < len(nodes):
                strategy = NodeAffinitySchedulingStrategy(nodes[len(self.actors)], soft=True)
            actor = self._new_actor(scheduling_strategy=strategy)
            self.actors[actor] = 0
            self.created += 1
            refs.append(actor.ready.remote())
        return refs

    def _new_actor(self, **options: Any) -> Any:
        return self._actor_class.options(num_cpus=self.settings.embedder_cpus, max_restarts=0, max_task_retries=0,
                                         **options).remote(self.kb)

    def _await_ready(self, refs: list[Any]) -> None:
        try:
            infos: list[WorkerInfo] = self.ray.get(refs, timeout=self.settings.ready_timeout_s)
        except self.errors.GetTimeoutError:
            raise EngineError(f"the embedding actors were not ready after {self.settings.ready_timeout_s:g} s: "
                              "the cluster may lack free CPUs (`ray status`)") from None
        except self.errors.RayTaskError as exc:  # a model missing or corrupt on a node: named by its error
            raise exc.as_instanceof_cause() from None
        for info in infos:
            if info.version != VERSION:
                raise EngineError(f"node {info.node} runs Citeline {info.version}, this driver {VERSION}: install "
                                  "the same version on every node")

    def _assign(self) -> None:
        if self.parsed and not self.actors:
            raise EngineError(f"every embedding actor died ({self.created} started); the committed documents are "
                              "kept: check the cluster (`ray status`) and run the ingest again")
        while self.parsed and self.actors:
            # the least busy actor; among equally busy ones the one given the fewest files, so work spreads over
            # every node's actor even when each call ends before the next file is parsed
            actor = min(self.actors, key=lambda a: (self.actors[a], self._served.get(a, 0)))
            if self.actors[actor] >= PER_ACTOR:
                return
            file = self.parsed.popleft()
            file.actor = actor
            self.actors[actor] += 1
            self._served[actor] = self._served.get(actor, 0) + 1
            self.embedding[actor.embed.remote(file.parse_ref)] = file
            file.since = time.monotonic()

    def _finish(self, ref: Any, file: _File, pending: deque[_File]) -> Iterator[ReadyDocument]:
        if file.actor in self.actors:
            self.actors[file.actor] -= 1
        t0 = time.perf_counter()
        try:
            done: EmbeddedDocument = self.ray.get(ref, timeout=FETCH_TIMEOUT_S)
        except self.errors.RayTaskError as exc:
            if not isinstance(exc.cause, _lost_work(self.errors)):
                raise exc.as_instanceof_cause() from None  # a bug, not a bad file: as a local ingest, it stops
            yield from self._retry(file, exc, pending)
            return
        except (*_lost_work(self.errors), self.errors.GetTimeoutError) as exc:
            if isinstance(exc, self.errors.RayActorError):
                self._replace(file.actor)
            yield from self._retry(file, exc, pending)
            return
        self.bytes_in_flight -= file.size
        yield self._ready(file, done)
        self.stats.fetch_s += time.perf_counter() - t0

    def _ready(self, file: _File, done: EmbeddedDocument) -> ReadyDocument:
        stats = self.stats
        stats.files += 1
        stats.parse_s += done.parse_seconds
        stats.embed_s += done.embed_seconds
        stats.parsed_on[done.parsed_on] = stats.parsed_on.get(done.parsed_on, 0) + 1
        if done.error is not None or done.document is None:
            error = done.error.exception() if done.error else FileError(f"{file.job.path}: parse failed")
            return ReadyDocument(file.job, error)
        stats.embedded_on[done.node] = stats.embedded_on.get(done.node, 0) + 1
        write_assets(Path(self.options.assets_dir), done.assets)
        prepared = Prepared(done.chunks, done.meta, [], None)
        attachments = tuple((a.document, Prepared(a.chunks, a.meta, [], None)) for a in done.attachments)
        return ReadyDocument(file.job, (done.document, prepared), vectors=_copied(done.vectors), spaces=done.spaces,
                             attachments=attachments,
                             attachment_vectors=tuple(_copied(a.vectors) for a in done.attachments))

    def _stalled(self) -> EngineError:
        return EngineError(f"no file finished on the Ray cluster at {self.settings.address} for "
                           f"{self.settings.stall_timeout_s:g} s ({len(self.parsing)} parsing, {len(self.embedding)} "
                           f"embedding, {len(self.actors)} actors): the committed documents are kept; check the "
                           "cluster (`ray status`) and run the ingest again")

    def _expire(self, pending: deque[_File]) -> Iterator[ReadyDocument]:
        """Work in flight longer than `task_timeout_s` is lost work (a task or actor call that a dead node took
        with it and that Ray never failed): cancelled, its actor replaced, the file shipped again or reported."""
        limit = self.settings.task_timeout_s
        now = time.monotonic()
        for stage in (self.parsing, self.embedding):
            for ref, file in [(r, f) for r, f in stage.items() if now - f.since > limit]:
                del stage[ref]
                with contextlib.suppress(Exception):  # already finished, or its worker is gone
                    self.ray.cancel(ref, force=stage is self.parsing)
                if stage is self.embedding and file.actor in self.actors:
                    with contextlib.suppress(Exception):
                        self.ray.kill(file.actor)
                    self._replace(file.actor)
                yield from self._retry(file, TimeoutError(f"no result after {limit:g} s"), pending)

    def _retry(self, file: _File, exc: BaseException, pending: deque[_File]) -> Iterator[ReadyDocument]:
        self.bytes_in_flight -= file.size
        if file.attempt >= self.settings.attempts:
            self.stats.lost += 1
            yield ReadyDocument(file.job, FileError(
                f"{file.job.path}: the Ray workers handling it died {file.attempt} times "
                f"({type(exc).__name__}); everything committed before is kept: run the ingest again"))
            return
        self.stats.retried += 1
        pending.appendleft(_File(file.job, file.size, file.attempt + 1))

    def _replace(self, actor: Any) -> None:
        """Forget a dead actor; start another if the live nodes have room for it beside one parse task."""
        self.actors.pop(actor, None)
        self._top_up()

    def _top_up(self) -> None:
        """Back to `wanted` actors as far as the live nodes' CPUs allow (a node that died took its CPUs; one
        that joined brings some). Never so many that no CPU is left for parsing: that would be a deadlock, the
        actors waiting for parsed documents that no task can produce."""
        self._last_top_up = time.monotonic()
        settings = self.settings
        room = int((_live_cpus(self.ray) - settings.parser_cpus) // settings.embedder_cpus)
        while len(self.actors) < min(self.wanted, room) and self.created < self.wanted * (1 + settings.attempts):
            self.actors[self._new_actor()] = 0
            self.created += 1


def _copied(vectors: Vectors) -> Vectors:
    """Writable copies: arrays fetched from Ray's object store are read-only views of shared memory."""
    return {s: (list(pos), np.array(m, dtype=np.float32)) for s, (pos, m) in vectors.items()}


def _embedding_nodes(ray: Any, cpus: float) -> list[str]:
    """The ids of the live nodes with room for one embedding actor (a head node started with no CPU has none)."""
    return [n["NodeID"] for n in sorted(ray.nodes(), key=lambda n: n.get("NodeManagerAddress", ""))
            if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) >= cpus]


def _live_cpus(ray: Any) -> float:
    return float(sum(n.get("Resources", {}).get("CPU", 0) for n in ray.nodes() if n.get("Alive")))


def _lost_work(errors: Any) -> tuple[type[BaseException], ...]:
    """Ray's errors for work lost with a worker or node (as opposed to an exception raised by our code)."""
    return (errors.RayActorError, errors.ActorUnavailableError, errors.WorkerCrashedError, errors.NodeDiedError,
            errors.ObjectLostError, errors.OwnerDiedError, errors.LocalRayletDiedError, errors.TaskCancelledError,
            errors.ObjectFetchTimedOutError, errors.RaySystemError, errors.OutOfMemoryError,
            errors.ObjectStoreFullError, errors.OutOfDiskError)

