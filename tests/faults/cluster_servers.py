"""Real Redis Cluster and Sentinel deployments on loopback for the fault tests and the bench.

``LocalCluster`` starts N cluster-mode ``redis-server`` processes on free ports (each in its own
temp dir), joins them with ``redis-cli --cluster create`` and waits until every node reports
``cluster_state:ok``. ``SentinelGroup`` starts a primary, a replica and three sentinels watching
the primary as ``mymaster``. Both stop (SIGKILL) and delete everything they started on
``stop()``; use them as context managers.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis
from redis.crc import key_slot

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from redis_server import LocalRedis, free_port, redis_server_binary


def cluster_port() -> int:
    """A free loopback port whose cluster bus port (+10000) is free and valid too."""
    for _ in range(200):
        port = random.randrange(20000, 50000)
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def require_binaries() -> str:
    """The redis-server binary; when the cluster tools are missing, pytest.skip on a developer
    machine but pytest.fail under CI=true (a silent skip there would hide 20 tests)."""
    import pytest

    binary = redis_server_binary()
    if binary is None or shutil.which("redis-cli") is None:
        message = (
            "cluster/sentinel tests need redis-server and redis-cli on PATH "
            "(Debian/Ubuntu: apt-get install redis-server redis-tools)"
        )
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return binary


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned), else raise."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (redis.exceptions.RedisError, OSError) as exc:
            last = exc
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout} s waiting for {what} (last error: {last})")


class LocalCluster:
    """A Redis Cluster of ``primaries`` primaries (and ``replicas`` replicas each) on loopback."""

    def __init__(self, primaries: int = 3, replicas: int = 0, node_timeout_ms: int = 1000) -> None:
        self.binary = redis_server_binary() or "redis-server"
        self.primaries = primaries
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self.nodes: list[LocalRedis] = []

    @property
    def url(self) -> str:
        """A ``redis+cluster://`` URL seeded with the first live node."""
        node = next(n for n in self.nodes if n.process is not None and n.process.poll() is None)
        return f"redis+cluster://127.0.0.1:{node.port}"

    @property
    def seed_url(self) -> str:
        """The same seed as a plain ``redis://`` URL (for ``cluster=True`` or Node's ioredis)."""
        return self.url.replace("redis+cluster://", "redis://")

    def start(self) -> LocalCluster:
        count = self.primaries * (1 + self.replicas)
        try:
            for _ in range(count):
                node = LocalRedis(
                    self.binary,
                    port=cluster_port(),
                    extra=[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-node-timeout",
                        str(self.node_timeout_ms),
                        "--cluster-require-full-coverage",
                        "yes",
                        "--repl-diskless-sync-delay",
                        "0",
                    ],
                )
                self.nodes.append(node)
                node.start()
            addresses = [f"127.0.0.1:{n.port}" for n in self.nodes]
            subprocess.run(
                [
                    "redis-cli",
                    "--cluster",
                    "create",
                    *addresses,
                    "--cluster-replicas",
                    str(self.replicas),
                    "--cluster-yes",
                ],
                check=True,
                capture_output=True,
                timeout=60,
            )
            wait_for(self._healthy, 30, "cluster_state:ok on every node")
        except BaseException:
            self.stop()
            raise
        return self

    def _healthy(self) -> bool:
        for node in self.live_nodes():
            client = self.client(node)
            try:
                info = client.execute_command("CLUSTER", "INFO")
                text = info.decode() if isinstance(info, bytes) else str(info)
                if "cluster_state:ok" not in text:
                    return False
                if self.replicas and self._known_primaries(client) < self.primaries:
                    return False
                replication = client.info("replication")
                if (
                    replication.get("role") == "slave"
                    and replication.get("master_link_status") != "up"
                ):
                    return False
            finally:
                client.close()
        return True

    def live_nodes(self) -> list[LocalRedis]:
        return [n for n in self.nodes if n.process is not None and n.process.poll() is None]

    @staticmethod
    def client(node: LocalRedis) -> redis.Redis:
        """A plain single-node client to one node (for CLUSTER, SCRIPT, DEBUG commands)."""
        return redis.Redis(port=node.port, socket_timeout=5, decode_responses=True)

    @staticmethod
    def _known_primaries(client: redis.Redis) -> int:
        """Primaries this node sees as healthy (CLUSTER NODES: Redis 6.2 has no SHARDS)."""
        text = client.execute_command("CLUSTER", "NODES")
        text = text.decode() if isinstance(text, bytes) else str(text)
        return sum(
            1
            for line in text.splitlines()
            if "master" in line.split()[2] and "fail" not in line.split()[2]
        )

    def owner_of(self, key: str) -> LocalRedis:
        """The live node currently serving ``key``'s slot as primary."""
        slot = key_slot(key.encode())
        for node in self.live_nodes():
            client = self.client(node)
            try:
                for start, end, primary, *_ in client.execute_command("CLUSTER", "SLOTS"):
                    if int(start) <= slot <= int(end):
                        port = int(primary[1])
                        return next(n for n in self.nodes if n.port == port)
            except redis.exceptions.RedisError:
                continue
            finally:
                client.close()
        raise RuntimeError(f"no node serves slot {slot}")

    def node_id(self, node: LocalRedis) -> str:
        client = self.client(node)
        try:
            return str(client.execute_command("CLUSTER", "MYID"))
        finally:
            client.close()

    def move_slot(self, slot: int, source: LocalRedis, target: LocalRedis) -> int:
        """Reshard one slot (and its keys) from ``source`` to ``target``; returns keys moved."""
        src, dst = self.client(source), self.client(target)
        try:
            src_id, dst_id = self.node_id(source), self.node_id(target)
            dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
            moved = 0
            while True:
                keys = src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100)
                if not keys:
                    break
                src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
                moved += len(keys)
            for node in self.live_nodes():
                client = self.client(node)
                try:
                    client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
                finally:
                    client.close()
            return moved
        finally:
            src.close()
            dst.close()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.nodes = []

    def __enter__(self) -> LocalCluster:
        return self.start() if not self.nodes else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _SentinelProcess(LocalRedis):
    """``redis-server <conf> --sentinel`` watching one primary."""

    def __init__(self, binary: str, primary_port: int, service: str, down_after_ms: int) -> None:
        super().__init__(binary, port=free_port())
        self.primary_port = primary_port
        self.service = service
        self.down_after_ms = down_after_ms

    def start(self) -> LocalRedis:
        conf = os.path.join(self.dir, "sentinel.conf")
        if not os.path.exists(conf):
            Path(conf).write_text(
                f"port {self.port}\n"
                "bind 127.0.0.1\n"
                f"dir {self.dir}\n"
                f"logfile {os.path.join(self.dir, 'sentinel.log')}\n"
                f"sentinel monitor {self.service} 127.0.0.1 {self.primary_port} 2\n"
                f"sentinel down-after-milliseconds {self.service} {self.down_after_ms}\n"
                f"sentinel failover-timeout {self.service} 4000\n"
                f"sentinel parallel-syncs {self.service} 1\n"
            )
        self.process = subprocess.Popen(
            [self.binary, conf, "--sentinel"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.wait_ready()
        return self


class SentinelGroup:
    """A primary, one replica and three sentinels (quorum 2) on loopback."""

    def __init__(self, service: str = "mymaster", down_after_ms: int = 1000) -> None:
        self.binary = redis_server_binary() or "redis-server"
        self.service = service
        self.down_after_ms = down_after_ms
        self.primary: LocalRedis | None = None
        self.replica: LocalRedis | None = None
        self.sentinels: list[LocalRedis] = []

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", s.port) for s in self.sentinels]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.service}"

    def start(self) -> SentinelGroup:
        try:
            self.primary = LocalRedis(
                self.binary, extra=["--repl-diskless-sync-delay", "0"]
            ).start()
            self.replica = LocalRedis(
                self.binary,
                extra=[
                    "--replicaof",
                    "127.0.0.1",
                    str(self.primary.port),
                    "--repl-diskless-sync-delay",
                    "0",
                ],
            ).start()
            wait_for(self._replica_synced, 20, "the replica to sync")
            for _ in range(3):
                sentinel = _SentinelProcess(
                    self.binary, self.primary.port, self.service, self.down_after_ms
                )
                self.sentinels.append(sentinel)
                sentinel.start()
            wait_for(self._sentinels_ready, 30, "sentinels to see the replica and each other")
        except BaseException:
            self.stop()
            raise
        return self

    def _replica_synced(self) -> bool:
        assert self.replica is not None
        client = redis.Redis(port=self.replica.port, decode_responses=True)
        try:
            return client.info("replication").get("master_link_status") == "up"
        finally:
            client.close()

    def _sentinels_ready(self) -> bool:
        for sentinel in self.sentinels:
            client = redis.Redis(port=sentinel.port, decode_responses=True)
            try:
                if len(client.execute_command("SENTINEL", "REPLICAS", self.service)) < 1:
                    return False
                if len(client.execute_command("SENTINEL", "SENTINELS", self.service)) < 2:
                    return False
            finally:
                client.close()
        return True

    def master_port(self) -> int:
        """The primary's port as the sentinels currently report it."""
        client = redis.Redis(port=self.sentinels[0].port, decode_responses=True)
        try:
            _host, port = client.execute_command(
                "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service
            )
            return int(port)
        finally:
            client.close()

    def stop(self) -> None:
        for process in [*self.sentinels, self.replica, self.primary]:
            if process is not None:
                process.stop()
        self.sentinels = []
        self.primary = self.replica = None

    def __enter__(self) -> SentinelGroup:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def fabricate_failed_job(
    client: Any, prefix: str, queue: str, job_id: str, ts: int = 1_700_000_000_000
) -> None:
    """Write a BullMQ-shaped failed job (hash + failed zset entry) with a plain client."""
    base = f"{prefix}:{queue}:"
    client.hset(
        base + job_id,
        mapping={
            "name": "fabricated",
            "data": '{"n":' + job_id + "}",
            "opts": '{"attempts":1}',
            "timestamp": ts,
            "priority": 0,
            "delay": 0,
            "finishedOn": ts + 2,
            "processedOn": ts + 1,
            "failedReason": "boom",
            "atm": 1,
            "ats": 1,
        },
    )
    client.zadd(base + "failed", {job_id: ts + 2})
