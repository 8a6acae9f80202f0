"""A real Ray cluster on loopback addresses for tests and benchmarks: a head node on 127.0.0.2 and worker nodes
on 127.0.0.3, 127.0.0.4, ... (never 127.0.0.1 or localhost: Ray rewrites those to the machine's network address,
and its traffic would leave the loopback range).

Every port is chosen free and pinned, usage statistics and the dashboard are off, each node has its own short
temporary folder (Ray's unix sockets live under it, and their paths have a length limit), start-up waits are
bounded, and a node is stopped by the PIDs of its own processes: `ray stop` would stop every Ray on the machine.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RAY = Path(sys.executable).with_name("ray")
START_TIMEOUT_S = 120.0
# a dead node is noticed in about 3 s instead of Ray's default 30 s or more
FAST_FAILURE = {"RAY_health_check_period_ms": "1000", "RAY_health_check_timeout_ms": "1000",
                "RAY_health_check_failure_threshold": "3", "RAY_health_check_initial_delay_ms": "1000"}


def _free_block(count: int, taken: set[int] | None = None) -> int:
    """The first of `count` consecutive TCP ports that nothing listens on (any address) and that are not in
    `taken` (ports this cluster has already pinned but that nothing may listen on yet: the GCS port before the
    head starts, another node's worker range)."""
    taken = set() if taken is None else taken
    for _ in range(200):
        base = random.randrange(20000, 60000 - count)
        block = range(base, base + count)
        if not taken.intersection(block) and all(_free(p) for p in block):
            taken.update(block)
            return base
    raise RuntimeError(f"no block of {count} free ports found")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("", port))
        except OSError:
            return False
    return True


@dataclass
class Node:
    ip: str
    temp_dir: Path
    head: bool


@dataclass
class RayCluster:
    """`start()` the head, `add_node()` more, `kill_node(ip)` one abruptly, `stop()` them all."""

    cpus_per_node: int = 2
    object_store_bytes: int = 200 * 1024**2
    port: int = 0
    nodes: dict[str, Node] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    pinned: set[int] = field(default_factory=set)  # every port given to a node of this cluster

    @property
    def address(self) -> str:
        return f"127.0.0.2:{self.port}"

    @property
    def uri(self) -> str:
        return f"ray://{self.address}"

    def start(self) -> RayCluster:
        if not RAY.exists():
            raise RuntimeError(f"{RAY} not found: pip install 'citeline[ray]'")
        pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": pythonpath, **FAST_FAILURE}
        self.port = _free_block(1, self.pinned)
        self._start_node("127.0.0.2", head=True)
        return self

    def add_node(self, ip: str = "127.0.0.3") -> None:
        self._start_node(ip, head=False)

    def _start_node(self, ip: str, head: bool) -> None:
        temp_dir = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
        base = _free_block(110, self.pinned)
        ports = ["--node-manager-port", base, "--object-manager-port", base + 1, "--runtime-env-agent-port",
                 base + 2, "--dashboard-agent-grpc-port", base + 3, "--dashboard-agent-listen-port", base + 4,
                 "--metrics-export-port", base + 5, "--min-worker-port", base + 10, "--max-worker-port", base + 109]
        where = (["--head", f"--port={self.port}", "--include-dashboard=false", "--dashboard-port", base + 6]
                 if head else [f"--address={self.address}"])
        cmd = [str(RAY), "start", *where, f"--node-ip-address={ip}", "--disable-usage-stats",
               f"--temp-dir={temp_dir}", f"--num-cpus={self.cpus_per_node}", "--num-gpus=0",
               f"--object-store-memory={self.object_store_bytes}", *ports]
        self.nodes[ip] = Node(ip, temp_dir, head)
        done = subprocess.run([str(c) for c in cmd], env=self.env, capture_output=True, text=True,
                              timeout=START_TIMEOUT_S)
        if done.returncode != 0:
            _kill(self.pids(ip))
            shutil.rmtree(self.nodes.pop(ip).temp_dir, ignore_errors=True)
            raise RuntimeError(f"ray start for {ip} failed ({done.returncode}): {done.stderr[-2000:]}")

    def wait_nodes(self, alive: int, timeout_s: float = 60.0) -> None:
        """Until the driver (this process, connected through `retrieval.ray_engine.connect`) sees `alive` nodes."""
        from retrieval.ray_engine import connect

        ray = connect(self.address, 60.0)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if sum(1 for n in ray.nodes() if n.get("Alive")) == alive:
                return
            time.sleep(0.5)
        raise RuntimeError(f"the cluster did not reach {alive} alive nodes in {timeout_s:g} s")

    def pids(self, ip: str) -> list[int]:
        """The processes of one node: those naming its temporary folder, and everything they started."""
        import psutil

        node = self.nodes[ip]
        roots = []
        for proc in psutil.process_iter(["pid", "cmdline"]):
            cmdline = " ".join(proc.info.get("cmdline") or [])
            if str(node.temp_dir) in cmdline:
                roots.append(proc)
        found: dict[int, psutil.Process] = {}
        for proc in roots:
            found[proc.pid] = proc
            try:
                for child in proc.children(recursive=True):
                    found[child.pid] = child
            except psutil.NoSuchProcess:
                pass
        return sorted(found)

    def raylet_pid(self, ip: str) -> int:
        import psutil

        for pid in self.pids(ip):
            try:
                if psutil.Process(pid).name() == "raylet":
                    return pid
            except psutil.NoSuchProcess:
                continue
        raise RuntimeError(f"no raylet found for node {ip}")

    def kill_node(self, ip: str) -> None:
        """Kill the node's raylet and every process of the node at once (SIGKILL): a machine that died."""
        pids = self.pids(ip)
        os.kill(self.raylet_pid(ip), signal.SIGKILL)
        _kill(pids)
        node = self.nodes.pop(ip)
        shutil.rmtree(node.temp_dir, ignore_errors=True)

    def stop(self) -> None:
        """Disconnect this process, then stop worker nodes before the head, each by its PIDs."""
        try:
            import ray

            if ray.is_initialized():
                ray.shutdown()
            from retrieval import ray_engine

            ray_engine._CONNECTED.clear()
        except ImportError:
            pass
        for ip in sorted(self.nodes, key=lambda i: self.nodes[i].head):
            _kill(self.pids(ip), grace_s=5.0)
            shutil.rmtree(self.nodes[ip].temp_dir, ignore_errors=True)
        self.nodes.clear()


def _kill(pids: list[int], grace_s: float = 0.0) -> None:
    import psutil

    procs = []
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(signal.SIGTERM if grace_s else signal.SIGKILL)
    _, alive = psutil.wait_procs(procs, timeout=grace_s or 5.0)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=5.0)
