"""Redis Cluster: a ``Connection`` that routes every call to the primary owning its hash slot.

``Connection(redis.cluster.RedisCluster(...))``, ``Connection("redis+cluster://host:port")`` or
``Connection("redis://host:port", cluster=True)`` build a :class:`ClusterConnection` (a
``Connection`` subclass, so the single-node class keeps its hot path untouched). It uses
redis-py's ``RedisCluster`` for the topology (slot map, node pools) and does the rest itself,
with the same rules as on one server:

* a command, a pipeline group or a script call is sent on a connection of the primary that
  owns its slot, and the raw reply is returned (no redis-py reply callbacks);
* ``MOVED`` refreshes the slot map and repeats the call on the new owner; ``ASK`` repeats it
  once on the importing node after ``ASKING``; a connection error refreshes the slot map and
  is left to the one retry owner (tenacity, in ``Connection._with_retry``), as are
  ``TRYAGAIN``, ``CLUSTERDOWN`` and an uncovered slot (a failover in progress);
* every script is preloaded on every primary when the process first uses the connection; a
  ``NOSCRIPT`` (a promoted replica, a resharding onto a restarted node) loads the script on
  the node that answered and repeats the call there;
* commands without a key (``PING``, ``INFO``, ``SCRIPT FLUSH``...) are handed to redis-py's
  ``RedisCluster.execute_command``, which knows where to fan them out (its reply shapes);
* a queue is refused at construction unless all of its keys share one hash slot, which takes
  a hash tag in the queue name or the prefix (``Queue("{emails}")``, ``prefix="{app}"``).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.exceptions
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from . import log
from .connection import (
    Connection,
    FairConnectionPool,
    PoolOptions,
    _command,
    _decode,
    _pipeline,
    check_url,
    dedicated_client,
    redact_url,
    unencodable,
)
from .errors import ConfigurationError, ScriptFailed, is_noscript, is_readonly
from .keys import QueueKeys
from .scripts import Script

T = TypeVar("T")

CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")
"""URL schemes that mean "a Redis Cluster reached through this seed node"."""

_MAX_REDIRECTS = 8

_DEDICATED_SETTINGS = (
    "username",
    "password",
    "credential_provider",
    "socket_connect_timeout",
    "socket_keepalive",
    "socket_keepalive_options",
    "ssl",
    "ssl_ca_certs",
    "ssl_ca_data",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_cert_reqs",
    "ssl_check_hostname",
    "client_name",
    "protocol",
)

_SLOT_MOVING = (
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.SlotNotCoveredError,
)


_CLUSTER_CLASS: Any = RedisCluster
_NODE_CLASS: Any = ClusterNode


def names_cluster(target: object) -> bool:
    """True when ``target`` (a URL or a client) designates a Redis Cluster."""
    if isinstance(target, RedisCluster):
        return True
    return isinstance(target, str) and target.startswith(CLUSTER_SCHEMES)


def _plain_url(url: str) -> str:
    """``redis+cluster://h:p`` -> ``redis://h:p`` (the form redis-py parses)."""
    parts = urlsplit(url)
    scheme = "rediss" if parts.scheme.startswith("rediss") else "redis"
    return urlunsplit(parts._replace(scheme=scheme))


def _transient(exc: BaseException) -> redis.exceptions.ConnectionError:
    """A slot in motion, as the transient error the retry owner waits out."""
    return redis.exceptions.ConnectionError(
        f"cluster slot unavailable ({type(exc).__name__}): {exc}"
    )


class ClusterConnection(Connection, cluster_transport=True):
    """A ``Connection`` to a Redis Cluster (built by ``Connection(...)``; see the module doc).

    ``max_connections`` and ``pool_timeout`` apply to each node's fair pool. A ``RedisCluster``
    passed in is borrowed (``close()`` leaves it open); one built from a URL is owned.
    ``client`` is the ``RedisCluster``.
    """

    single_node = False

    def _open(self, url: Any, options: PoolOptions) -> None:
        """A ``RedisCluster`` borrowed, or built from a cluster URL with fair node pools."""
        self._cluster: Any
        if isinstance(url, RedisCluster):
            self._cluster = url
            self._description = "borrowed redis.cluster.RedisCluster"
        elif isinstance(url, str):
            try:
                plain = _plain_url(url) if url.startswith(CLUSTER_SCHEMES) else url
            except ValueError as exc:
                raise ConfigurationError(f"bad Redis Cluster URL: {exc}") from None
            if not plain.startswith(("redis://", "rediss://")):
                raise ConfigurationError(
                    f"unsupported Redis Cluster URL {redact_url(url)!r}: use redis+cluster://, "
                    "rediss+cluster://, or redis:// with cluster=True"
                )
            check_url(plain)
            try:
                self._cluster = _CLUSTER_CLASS(
                    url=plain,
                    connection_pool_class=FairConnectionPool,
                    timeout=options.pool_timeout,
                    max_connections=options.max_connections,
                    socket_timeout=options.socket_timeout,
                    socket_connect_timeout=options.socket_connect_timeout,
                    retry=Retry(NoBackoff(), 0),
                    **options.redis_kwargs,
                )
            except (RedisClusterException, redis.exceptions.RedisError) as exc:
                raise ConfigurationError(
                    f"could not reach Redis Cluster at {redact_url(url)}: {exc}"
                ) from exc
            self._owns_pool = True
            self._description = f"cluster {redact_url(url)}"
        else:
            raise ConfigurationError(
                f"a cluster connection needs a URL or a RedisCluster, not {type(url).__name__}"
            )
        self.client = self._cluster
        kwargs = getattr(self._cluster.nodes_manager, "connection_kwargs", None) or {}
        self._socket_timeout = kwargs.get("socket_timeout")

    def __repr__(self) -> str:
        return f"<ClusterConnection {self._description}{' closed' if self._closed else ''}>"

    def _disconnect(self) -> None:
        """Close the cluster client (``close()`` calls it only when this object created it)."""
        self._cluster.close()

    def check_queue_keys(self, keys: QueueKeys) -> None:
        """Refuse a queue whose keys would not all hash to one slot (ConfigurationError)."""
        if keys.hash_slot_tag():
            return
        raise ConfigurationError(
            f"queue {keys.name!r} (prefix {keys.prefix!r}) cannot run on Redis Cluster: its keys "
            f"would hash to different slots, and BullMQ's scripts touch several of them at once. "
            f"Put a hash tag in the queue name or the prefix, e.g. Queue('{{{keys.name}}}', "
            f"prefix={keys.prefix!r}) or prefix='{{{keys.prefix}}}'."
        )

    # -- running things -------------------------------------------------------------------

    def execute(self, *args: Any) -> Any:
        """Run one command on the primary owning its key (retried on transient errors)."""
        self._check_open()
        slot = self._slot_of_command(args)
        if slot is None:
            cluster = self._cluster
            send = partial(cluster.execute_command, *args)
            return self._with_retry(lambda: _decode(self._keyless(send)))
        return self._with_retry(lambda: _decode(self._on_slot(slot, lambda c: _command(c, args))))

    def pipeline(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Run read commands, one round trip per slot (not a transaction)."""
        self._check_open()
        batch = [tuple(command) for command in commands]

        def attempt() -> list[Any]:
            replies: list[Any] = [None] * len(batch)
            groups: dict[int | None, list[int]] = {}
            for index, command in enumerate(batch):
                groups.setdefault(self._slot_of_command(command), []).append(index)
            for slot, indexes in groups.items():
                if slot is None:
                    for index in indexes:
                        send = partial(self._cluster.execute_command, *batch[index])
                        replies[index] = self._keyless(send)
                    continue
                group = [batch[i] for i in indexes]
                answered = self._on_slot(slot, partial(_pipeline_unchecked, commands=group))
                for index, reply in zip(indexes, answered, strict=True):
                    if isinstance(reply, redis.exceptions.AskError):  # MOVED or ASK: ask again
                        reply = self._on_slot(slot, partial(_command, args=batch[index]))
                    replies[index] = reply
            for reply in replies:
                if isinstance(reply, redis.exceptions.ResponseError):
                    raise reply
            return replies

        return self._with_retry(lambda: _decode(attempt()))

    def run_script(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run ``lua/<name>.lua`` on the primary owning its keys; NOSCRIPT is recovered."""
        script = self._scripts.get(name)
        slot = _slot_of_keys(keys)
        args, guard = self._guarded(args)
        return self._with_retry(
            lambda: _decode(
                self._on_slot(slot, lambda c: self._evalsha(c, script, keys, guard(args)))
            )
        )

    def run_script_many(
        self, name: str, calls: Iterable[tuple[Sequence[str], Sequence[Any]]]
    ) -> list[Any]:
        """Run one script several times, one round trip per slot (each call atomic on its own)."""
        script, batch, guard = self._script_batch(name, calls)

        def send_group(connection: Any, group: list[Any]) -> list[Any]:
            if guard is not None:
                guard(())
            return _evalsha_batch(connection, script=script, calls=group)

        groups: dict[int, list[int]] = {}
        for index, (keys, _) in enumerate(batch):
            groups.setdefault(_slot_of_keys(keys), []).append(index)

        def attempt() -> list[Any]:
            replies: list[Any] = [None] * len(batch)
            for slot, indexes in groups.items():
                group = [batch[i] for i in indexes]
                answered = self._on_slot(slot, partial(send_group, group=group))
                for index, reply in zip(indexes, answered, strict=True):
                    if isinstance(reply, redis.exceptions.AskError):
                        # Redirected before it ran: run that call alone on the new owner.
                        keys, args = batch[index]
                        reply = self._on_slot(
                            slot, partial(self._evalsha, script=script, keys=keys, args=args)
                        )
                    elif isinstance(reply, redis.exceptions.ResponseError):
                        if is_readonly(reply):
                            raise reply
                        if isinstance(reply, _SLOT_MOVING):
                            raise _transient(reply)
                        raise ScriptFailed(str(reply), script=name)
                    replies[index] = reply
            return replies

        return self._with_retry(lambda: _decode(attempt()))

    def _dedicated_client(
        self, socket_timeout: float | None, key: str | None, client_name: str | None
    ) -> redis.Redis:
        """``dedicated()`` on a cluster: a client on the primary owning ``key`` when given.

        Without ``key`` it is a separate ``RedisCluster`` (one socket per node, no redis-py
        retries) that routes each blocking command by its key; it offers the same command
        methods as ``redis.Redis`` (``bzpopmin``, ``xread``...), which is what it is typed as.
        """
        if key is None:
            settings = {
                name: value
                for name, value in self._cluster.nodes_manager.connection_kwargs.items()
                if name in _DEDICATED_SETTINGS
            }
            seeds = [_NODE_CLASS(n.host, n.port) for n in self._cluster.get_primaries()]
            client = _CLUSTER_CLASS(
                startup_nodes=seeds,
                socket_timeout=socket_timeout,
                retry=Retry(NoBackoff(), 0),
                max_connections=1,
                **({"client_name": client_name} if client_name is not None else {}),
                **settings,
            )
            return cast(redis.Redis, client)
        node = self._cluster.nodes_manager.get_node_from_slot(key_slot(key.encode("utf-8")))
        node_client = self._cluster.get_redis_connection(node)
        return dedicated_client(node_client.connection_pool, socket_timeout, client_name)

    def client_lists(self) -> list[str]:
        """``CLIENT LIST`` of every primary, one reply each."""
        self._check_open()

        def one(pool: Any) -> str:
            connection = pool.get_connection()
            try:
                return str(_decode(_command(connection, ("CLIENT", "LIST"))))
            except BaseException:
                connection.disconnect()
                raise
            finally:
                pool.release(connection)

        pools = [
            self._cluster.get_redis_connection(node).connection_pool
            for node in self._cluster.get_primaries()
        ]
        return [self._with_retry(partial(one, pool)) for pool in pools]

    # -- internals ------------------------------------------------------------------------

    def _evalsha(
        self, connection: Any, script: Script, keys: Sequence[str], args: Sequence[Any]
    ) -> Any:
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            return _command(connection, command)
        except redis.exceptions.ResponseError as exc:
            if is_readonly(exc) or isinstance(exc, (redis.exceptions.AskError, *_SLOT_MOVING)):
                raise  # a redirect or a failover: _on_slot and the retry owner handle it
            if not is_noscript(exc):
                raise ScriptFailed(f"{script.name}: {exc}", script=script.name) from exc
        log.script_reloaded(script.name)
        _command(connection, ("SCRIPT", "LOAD", script.source))
        return _command(connection, command)

    def _slot_of_command(self, command: Sequence[Any]) -> int | None:
        """The hash slot a command's keys live in, or None when it has no key."""
        name = str(command[0]).upper()
        if name in ("EVALSHA", "EVAL") and len(command) > 3 and int(command[2]) > 0:
            return _slot_of_keys([str(k) for k in command[3 : 3 + int(command[2])]])
        try:
            slot = self._cluster.determine_slot(*command)
        except RedisClusterException:
            return None
        return None if slot is None else int(slot)

    def _keyless(self, call: Callable[[], T]) -> T:
        self._check_open()
        try:
            return call()
        except _SLOT_MOVING as exc:
            raise _transient(exc) from exc

    def _on_slot(self, slot: int, work: Callable[[Any], T]) -> T:
        """Run ``work(connection)`` on the primary owning ``slot``, following redirects."""
        self._check_open()
        if self._preloaded_pid != os.getpid():
            self._preload()
        cluster = self._cluster
        asking: Any = None
        connection: Any
        for _ in range(_MAX_REDIRECTS):
            try:
                node = asking or cluster.nodes_manager.get_node_from_slot(slot)
            except redis.exceptions.SlotNotCoveredError as exc:
                self._refresh()
                raise _transient(exc) from exc
            pool = cluster.get_redis_connection(node).connection_pool
            try:
                connection = pool.get_connection()
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
                self._refresh()  # the node is gone: maybe a replica took over its slots
                raise
            try:
                if asking is not None:
                    _command(connection, ("ASKING",))
                return work(connection)
            except redis.exceptions.MovedError:
                self._refresh()
                asking = None
            except redis.exceptions.AskError as exc:
                asking = cluster.get_node(host=exc.host, port=exc.port)
                if asking is None:
                    self._refresh()
            except _SLOT_MOVING as exc:
                self._refresh()
                raise _transient(exc) from exc
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
                connection.disconnect()
                self._refresh()
                raise
            except UnicodeEncodeError as exc:  # refused while packing: nothing was sent
                raise unencodable(exc) from None
            except BaseException:
                # A connection that failed mid-command may hold a half-read reply.
                connection.disconnect()
                raise
            finally:
                pool.release(connection)
        raise _transient(RuntimeError(f"slot {slot} still redirected after {_MAX_REDIRECTS} tries"))

    def _refresh(self) -> None:
        """Re-read the slot map; a cluster that cannot answer yet is retried later."""
        try:
            self._cluster.nodes_manager.initialize()
        except (RedisClusterException, redis.exceptions.RedisError, OSError):
            pass

    def _preload(self, connection: Any = None) -> None:
        """SCRIPT LOAD every script on every primary (once per process)."""
        pid = os.getpid()
        commands = [("SCRIPT", "LOAD", s.source) for s in self._scripts.all()]
        for node in self._cluster.get_primaries():
            pool = self._cluster.get_redis_connection(node).connection_pool
            connection = pool.get_connection()
            try:
                _pipeline(connection, commands)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
                connection.disconnect()  # a node down now loads on NOSCRIPT later
            except BaseException:
                connection.disconnect()
                raise
            finally:
                pool.release(connection)
        self._preloaded_pid = pid


def _slot_of_keys(keys: Sequence[str]) -> int:
    if not keys:
        return random.randrange(REDIS_CLUSTER_HASH_SLOTS)
    return int(key_slot(keys[0].encode("utf-8")))


def _pipeline_unchecked(connection: Any, commands: Sequence[Sequence[Any]]) -> list[Any]:
    return _pipeline(connection, commands, raise_errors=False)


def _evalsha_batch(
    connection: Any, script: Script, calls: Sequence[tuple[Sequence[str], Sequence[Any]]]
) -> list[Any]:
    """EVALSHA each call in one round trip; calls refused with NOSCRIPT are loaded and resent."""
    commands = [("EVALSHA", script.sha, len(keys), *keys, *args) for keys, args in calls]
    replies = _pipeline(connection, commands, raise_errors=False)
    missing = [
        i
        for i, reply in enumerate(replies)
        if isinstance(reply, redis.exceptions.ResponseError) and is_noscript(reply)
    ]
    if missing:
        log.script_reloaded(script.name)
        _command(connection, ("SCRIPT", "LOAD", script.source))
        again = _pipeline(connection, [commands[i] for i in missing], raise_errors=False)
        for index, reply in zip(missing, again, strict=True):
            replies[index] = reply
    return replies
