"""The only owner of sockets, pools and the retry policy.

A ``Connection`` turns a URL, a ``redis.Redis``, a ``redis.ConnectionPool`` or nothing (the
default ``redis://localhost:6379``) into a bounded, fair, fork-safe pool, and runs commands
and our Lua scripts on it:

* scripts are preloaded (``SCRIPT LOAD``) the first time a pool is used and called by SHA;
  ``NOSCRIPT`` (restart, ``SCRIPT FLUSH``, failover) reloads them and repeats the call;
* connection errors and timeouts are retried by tenacity, with exponential backoff and jitter,
  inside a total time budget; redis-py's own retries are switched off on pools we create, so
  there is exactly one retry owner;
* a transition script receives a call token and, unless the job's own state will prove it,
  stores its reply under it for as long as this connection's retries can reach (``outcome_ttl_ms``,
  put in place of the ``OUTCOME_TTL_MS`` argument), so a call repeated after a lost reply returns
  the original outcome instead of applying the transition twice (see ``keys.OP_SEGMENT``).
"""

from __future__ import annotations

import base64
import collections
import itertools
import math
import os
import socket as _socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import redis
import redis.exceptions
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    wait_random_exponential,
)

from . import log
from .errors import (
    BullMQSyncError,
    ClientClosed,
    ConfigurationError,
    InvalidArgument,
    PoolTimeout,
    RedisUnavailable,
    ScriptFailed,
    is_noscript,
    is_readonly,
    is_transient,
    map_redis_error,
)
from .keys import QueueKeys
from .scripts import LIBRARY, Script, ScriptLibrary

if TYPE_CHECKING:
    from redis.cluster import RedisCluster

T = TypeVar("T")

_hiredis_pack: Callable[..., bytes] | None
try:
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # the [hiredis] extra is optional
    _hiredis_pack = None


class _Process:
    """This process's id, refreshed after ``fork()`` (``os.getpid()`` is a system call)."""

    pid = os.getpid()

    @classmethod
    def refresh(cls) -> None:
        cls.pid = os.getpid()


os.register_at_fork(after_in_child=_Process.refresh)

_SENTINEL_CLASS: Any = Sentinel

DEFAULT_URL = "redis://localhost:6379"
"""The Redis used when no URL is given and ``REDIS_URL`` is not set (see ``default_url``)."""

INTERACTIVE_RETRY_BUDGET = 2.0
"""Seconds an interactive surface (the CLI, a notebook view) keeps retrying an unreachable
Redis before it says where it could not connect and why."""

MAX_RELOADS = 3
"""Times a call answered NOSCRIPT loads its script and is sent again: each SCRIPT FLUSH
that lands between a reload and the resend costs one (Redis ran nothing either time)."""


def default_url() -> str:
    """The URL used when none is given: ``$REDIS_URL`` if set and not empty, else
    ``redis://localhost:6379``. The one rule for ``Queue("q")``, ``Connection()``, the CLI,
    the demo and the integrations' defaults."""
    return os.environ.get("REDIS_URL") or DEFAULT_URL


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (never raises, even on a bad URL)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))


URL_SCHEMES = ("redis://", "rediss://", "unix://")
"""Schemes of a single server; ``redis+cluster://`` and ``redis+sentinel://`` are handled apart."""


def check_url(url: str) -> None:
    """Raise ``ConfigurationError`` unless ``url`` is a usable single-server Redis URL.

    Checks the scheme, host, port (1-65535) and database number without connecting.
    """
    shown = redact_url(url)
    if not url.startswith(URL_SCHEMES):
        raise ConfigurationError(
            f"unsupported Redis URL {shown!r}: use redis://host:port[/db], rediss:// (TLS), "
            "unix:///path/to/socket, redis+cluster:// or redis+sentinel://"
        )
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ConfigurationError(f"bad Redis URL {shown!r}: {exc}") from None
    hostport = parts.netloc.rpartition("@")[2]
    text = hostport.rpartition("]")[2] if hostport.startswith("[") else hostport
    port_text = text.rpartition(":")[2] if ":" in text else ""
    if port_text and not port_text.isdigit():
        raise ConfigurationError(f"bad Redis URL {shown!r}: port {port_text!r} is not a number")
    port = int(port_text) if port_text else None
    if parts.scheme == "unix":
        if not parts.path:
            raise ConfigurationError(f"bad Redis URL {shown!r}: unix:// needs a socket path")
        return
    host = parts.hostname or ""
    if any(c.isspace() for c in parts.netloc) or (not host and parts.netloc.rpartition("@")[2]):
        raise ConfigurationError(f"bad Redis URL {shown!r}: bad host {host!r}")
    if port is not None and not 1 <= port <= 65535:
        raise ConfigurationError(f"bad Redis URL {shown!r}: port {port} is out of range 1-65535")
    db = parts.path.strip("/")
    if db and not (db.isdigit() and int(db) < 2**31):
        raise ConfigurationError(
            f"bad Redis URL {shown!r}: the database must be a number, got {db!r}"
        )


def check_any_url(url: str) -> None:
    """``check_url`` for every URL ``Connection`` accepts (cluster and Sentinel too), offline."""
    if url.startswith(SENTINEL_SCHEMES):
        SentinelTarget.from_url(url)
    elif url.startswith(("redis+cluster://", "rediss+cluster://")):
        try:
            plain = urlunsplit(urlsplit(url)._replace(scheme=url.split("+", 1)[0]))
        except ValueError as exc:
            raise ConfigurationError(f"bad Redis Cluster URL: {exc}") from None
        check_url(plain)
    else:
        check_url(url)


_INTERACTIVE = threading.local()
"""``connect_timeout``: the cap on a new socket's connect timeout in this thread, set by
``Connection.short_budget()`` (None outside)."""


def _connect(connection: Any) -> None:
    """``connection.connect()``, within this thread's interactive connect cap if any."""
    cap = getattr(_INTERACTIVE, "connect_timeout", None)
    usual = connection.socket_connect_timeout
    if cap is None or (usual is not None and usual <= cap):
        connection.connect()
        return
    connection.socket_connect_timeout = cap
    try:
        connection.connect()
    finally:
        connection.socket_connect_timeout = usual


class _Waiter:
    __slots__ = ("connection", "ready")

    def __init__(self) -> None:
        self.ready = threading.Lock()
        self.ready.acquire()
        self.connection: Any = None


class FairConnectionPool(redis.ConnectionPool):
    """A bounded blocking pool that serves waiting threads first come, first served.

    redis-py's ``BlockingConnectionPool`` lets a thread that just released a connection take it
    straight back, so under contention some threads wait many times longer than others. Here a
    released connection is handed directly to the longest-waiting thread. The checkout is also
    cheaper than the stock one: a connection returned to the pool after an error is always
    disconnected first, so no readiness poll is needed on the way out.
    """

    def __init__(self, *args: Any, timeout: float = 10.0, **kwargs: Any) -> None:
        self.timeout = timeout
        self._waiters: collections.deque[_Waiter] = collections.deque()
        self.peak_in_use = 0
        super().__init__(*args, **kwargs)

    def reset(self) -> None:
        self._waiters = collections.deque()
        super().reset()

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        if self.pid != _Process.pid:
            self._checkpid()
        waiter = None
        with self._lock:
            if self._available_connections and not self._waiters:
                connection = self._available_connections.pop()
            elif self._created_connections < self.max_connections:
                connection = self.make_connection()
            else:
                waiter = _Waiter()
                self._waiters.append(waiter)
            if waiter is None:
                self._in_use_connections.add(connection)
                if len(self._in_use_connections) > self.peak_in_use:
                    self.peak_in_use = len(self._in_use_connections)
        if waiter is not None:
            connection = self._wait(waiter)
        if connection._sock is None:
            try:
                _connect(connection)
            except BaseException:
                self.release(connection)
                raise
        return connection

    def _wait(self, waiter: _Waiter) -> Any:
        if waiter.ready.acquire(timeout=self.timeout):
            return waiter.connection
        with self._lock:
            try:
                self._waiters.remove(waiter)
            except ValueError:  # handed over just as the wait timed out
                return waiter.connection
        raise PoolTimeout(
            f"no pooled Redis connection became free within {self.timeout} s "
            f"(max_connections={self.max_connections})"
        )

    def release(self, connection: Any) -> None:
        if self.pid != _Process.pid:
            self._checkpid()
            return
        with self._lock:
            if connection not in self._in_use_connections:
                return
            if self._waiters:
                waiter = self._waiters.popleft()
                waiter.connection = connection
                waiter.ready.release()
                return
            self._in_use_connections.discard(connection)
            self._available_connections.append(connection)


class FairSentinelConnectionPool(FairConnectionPool, SentinelConnectionPool):
    """The fair pool on a Sentinel-managed primary (redis-py's SentinelConnectionPool).

    Each new socket asks the sentinels where the primary is; after a failover the dead
    primary's sockets fail, are disconnected, and reconnect to the promoted replica.
    """


SENTINEL_SCHEMES = ("redis+sentinel://", "rediss+sentinel://")
"""``redis+sentinel://[[user]:password@]host:port[,host:port...]/service_name[/db]``."""


@dataclass(frozen=True)
class SentinelTarget:
    """Where the sentinels are and which monitored primary to use (see ``Connection.sentinel``)."""

    sentinels: tuple[tuple[str, int], ...]
    service_name: str = "mymaster"
    sentinel_kwargs: dict[str, Any] = field(default_factory=dict)
    redis_kwargs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_url(cls, url: str) -> SentinelTarget:
        """Parse ``redis+sentinel://[[user]:pass@]h1:p1,h2:p2/service[/db][?sentinel_password=]``."""
        try:
            parts = urlsplit(url)
        except ValueError as exc:
            raise ConfigurationError(f"bad Sentinel URL: {exc}") from None
        userinfo, _, hosts = parts.netloc.rpartition("@")
        sentinels: list[tuple[str, int]] = []
        for item in hosts.split(","):
            host, _, port = item.strip().rpartition(":")
            try:
                number = int(port) if host else 26379
            except ValueError:
                number = 0
            if not 1 <= number <= 65535 or any(c.isspace() for c in host):
                raise ConfigurationError(f"bad sentinel address {item!r} in {redact_url(url)!r}")
            sentinels.append((host or item.strip(), number))
        path = [unquote(p) for p in parts.path.split("/") if p]
        if not path or not sentinels or not all(host for host, _ in sentinels):
            raise ConfigurationError(
                f"Sentinel URL {redact_url(url)!r} needs sentinel addresses and a service name: "
                "redis+sentinel://host:26379,host2:26379/mymaster"
            )
        redis_kwargs: dict[str, Any] = {}
        if userinfo:
            user, colon, password = userinfo.partition(":")
            if user:
                redis_kwargs["username"] = unquote(user)
            if colon:
                redis_kwargs["password"] = unquote(password)
        if len(path) > 1:
            if not path[1].isdigit():
                raise ConfigurationError(
                    f"bad Sentinel URL {redact_url(url)!r}: the database must be a number"
                )
            redis_kwargs["db"] = int(path[1])
        if parts.scheme.startswith("rediss"):
            redis_kwargs["ssl"] = True
        sentinel_kwargs: dict[str, Any] = {}
        for name, value in parse_qsl(parts.query):
            if name == "sentinel_password":
                sentinel_kwargs["password"] = value
            elif name == "sentinel_username":
                sentinel_kwargs["username"] = value
            else:
                raise ConfigurationError(f"unsupported Sentinel URL option {name!r}")
        return cls(tuple(sentinels), path[0], sentinel_kwargs, redis_kwargs)


def dedicated_client(
    pool: redis.ConnectionPool, socket_timeout: float | None, client_name: str | None = None
) -> redis.Redis:
    """A one-socket client with ``pool``'s settings and no redis-py retries.

    ``client_name`` is set with ``CLIENT SETNAME`` on every (re)connect of that socket.
    """
    kwargs = dict(pool.connection_kwargs)
    kwargs["socket_timeout"] = socket_timeout
    if client_name is not None:
        kwargs["client_name"] = client_name
    kwargs["retry"] = Retry(NoBackoff(), 0)
    kwargs.pop("decode_responses", None)
    return redis.Redis(
        connection_pool=redis.ConnectionPool(
            connection_class=pool.connection_class, max_connections=1, **kwargs
        )
    )


class _OutcomeTtl:
    """The ARGV placeholder for "this connection's outcome TTL in ms" (see ``outcome_ttl_ms``).

    Callers put ``OUTCOME_TTL_MS`` in a transition script's arguments; the connection that
    sends the call replaces it with its own ``outcome_ttl_ms``, so the TTL always matches the
    retry policy of the client that may repeat the call.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "OUTCOME_TTL_MS"

    def __str__(self) -> str:
        raise TypeError("OUTCOME_TTL_MS is filled in by Connection.run_script, not sent as is")


OUTCOME_TTL_MS: Any = _OutcomeTtl()
"""Put this where a transition script takes its outcome TTL; the connection fills it in."""

LONGEST_OUTCOME_TTL_MS = 10 * 60 * 1000
"""The cap, also used when a socket timeout is unbounded (a retry's reach is then unknown)."""

BACKOFF_CAP = 1.0
"""The longest pause (s) between two retries (``wait_random_exponential(max=...)``)."""

FIRST_PAUSE = 0.02
"""The pause (s) before the first retry."""


def send_window(*, retry_budget: float, socket_timeout: float | None) -> float:
    """How long (s) after its first send a transition call may still be sent again.

    The first reply can be lost for up to ``socket_timeout`` before the client notices; the
    retries then go on for ``retry_budget``, and as the stop is checked after a failed attempt,
    one more may start after a pause of up to ``BACKOFF_CAP``. A repeat that would be sent later
    (it waited for a pooled connection or a connect) is refused with an ambiguous
    ``RedisUnavailable`` instead, so the outcome it needs is still there. Infinite when
    ``socket_timeout`` is None.
    """
    if socket_timeout is None:
        return math.inf
    return socket_timeout + FIRST_PAUSE + max(retry_budget, 0.0) + BACKOFF_CAP


def outcome_ttl_ms(*, retry_budget: float, socket_timeout: float | None) -> int:
    """How long (ms) a transition's outcome must stay readable: the reach of a repeated call.

    The outcome is written when the first send runs on the server; a repeat is sent at most
    ``send_window()`` later, and may still run up to ``socket_timeout`` after it was sent (the
    client stops waiting then, the server may not have). A margin of a quarter (at least 2 s)
    covers a server that stalls and clock rates. Capped at ``LONGEST_OUTCOME_TTL_MS``, which
    is also the answer when ``socket_timeout`` is None (a reply may then be awaited forever).
    With the defaults (10 s budget, 10 s socket timeout): 31.02 s + 7.76 s = 38.8 s.
    """
    if socket_timeout is None:
        return LONGEST_OUTCOME_TTL_MS
    reach = send_window(retry_budget=retry_budget, socket_timeout=socket_timeout) + socket_timeout
    seconds = reach + max(2.0, reach / 4)
    return min(LONGEST_OUTCOME_TTL_MS, math.ceil(seconds * 1000))


class SendWindow:
    """``check(args)``: ``args``, or an ambiguous ``RedisUnavailable`` once the window closed.

    The window opens at the first check (the first send of a transition call) and lasts
    ``seconds``; checked right before each send, after the pool wait and the connect.
    """

    __slots__ = ("_closes", "_seconds")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._closes: float | None = None

    def check(self, args: Sequence[Any]) -> Sequence[Any]:
        now = time.monotonic()
        if self._closes is None:
            self._closes = now + self._seconds
        elif now > self._closes:
            raise RedisUnavailable(
                f"a repeated call could not be sent within {self._seconds:.1f} s of the first: "
                "its outcome could no longer be confirmed",
                ambiguous=True,
            )
        return args


def fill_outcome_ttl(args: Sequence[Any], ttl_ms: int) -> Sequence[Any]:
    """``args`` with ``OUTCOME_TTL_MS`` replaced by ``ttl_ms`` (the same object when absent)."""
    for index, arg in enumerate(args):
        if arg is OUTCOME_TTL_MS:
            filled = list(args)
            filled[index] = ttl_ms
            return filled
    return args


OUTCOME_SHARE_BITS = 7
"""2**7 = 128 calls share one outcome key: Redis keeps a hash of up to 128 short fields as a
compact listpack (``hash-max-listpack-entries``), about 10 bytes a field instead of about
110 for a key of its own."""

_OUTCOME_FIELD_MASK = (1 << OUTCOME_SHARE_BITS) - 1


class _Tokens:
    """Unique call tokens: a random per-process nonce and a counter (renewed after fork).

    ``<nonce><counter // 128 in hex>#<counter % 128 in hex>``, the nonce being 48 random bits
    as 8 URL-safe base64 characters. The part before ``#`` names an outcome key shared by 128
    consecutive calls of this process (a small hash, one field per call: see
    ``keys.OP_SEGMENT``), the part after it the call's field.
    """

    def __init__(self) -> None:
        self._renew()
        os.register_at_fork(after_in_child=self._renew)

    def _renew(self) -> None:
        self._nonce = base64.urlsafe_b64encode(os.urandom(6)).decode("ascii")
        self._counter = itertools.count(1)

    def next(self) -> str:
        count = next(self._counter)
        return f"{self._nonce}{count >> OUTCOME_SHARE_BITS:x}#{count & _OUTCOME_FIELD_MASK:x}"


TOKENS = _Tokens()


@dataclass(frozen=True)
class PoolOptions:
    """The pool settings a ``Connection`` was given, for the transport that opens it."""

    max_connections: int
    pool_timeout: float
    socket_timeout: float | None
    socket_connect_timeout: float | None
    redis_kwargs: dict[str, Any]


class Connection:
    """A pooled, thread-safe, fork-safe connection to one Redis server.

    ``Connection("redis://:secret@host:6379/0")``, ``Connection(redis.Redis(...))`` or
    ``Connection(pool)``. A client or pool passed in is borrowed: ``close()`` leaves it open.
    ``retry_budget`` is the total time (seconds) spent retrying connection errors and
    timeouts before ``RedisUnavailable`` is raised.

    Redis Cluster: ``Connection(RedisCluster(...))``, ``Connection("redis+cluster://host:port")``
    or ``Connection("redis://host:port", cluster=True)`` return a ``ClusterConnection`` (see
    ``bullmq_sync.cluster``). Sentinel: ``Connection.sentinel([("h", 26379)], "mymaster")`` or
    ``Connection("redis+sentinel://h1:26379,h2:26379/mymaster")`` follow failovers.
    """

    single_node: ClassVar[bool] = True
    """False for a cluster, whose calls are routed by slot (no socket serves them all)."""

    _cluster_transport: ClassVar[type[Connection] | None] = None
    """The subclass a cluster URL or client gets (``cluster.ClusterConnection`` registers
    itself when ``bullmq_sync`` is imported), so this module never imports ``cluster``."""

    def __init_subclass__(cls, *, cluster_transport: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cluster_transport:
            Connection._cluster_transport = cls

    def __new__(
        cls, url: Any = None, *args: Any, cluster: bool = False, **kwargs: Any
    ) -> Connection:
        if cls is Connection and (cluster or _names_cluster(url)):
            transport = Connection._cluster_transport
            if transport is None:  # only if bullmq_sync.connection is loaded by itself
                raise ConfigurationError("Redis Cluster needs bullmq_sync.cluster to be imported")
            return super().__new__(transport)
        return super().__new__(cls)

    def __init__(
        self,
        url: str | redis.Redis | redis.ConnectionPool | RedisCluster | SentinelTarget | None = None,
        *,
        max_connections: int = 16,
        pool_timeout: float = 10.0,
        socket_timeout: float | None = 10.0,
        socket_connect_timeout: float | None = 5.0,
        retry_budget: float = 10.0,
        retry_max_attempts: int = 1000,
        scripts: ScriptLibrary = LIBRARY,
        cluster: bool = False,  # a cluster is dispatched by __new__
        **redis_kwargs: Any,
    ) -> None:
        if max_connections < 1:
            raise ConfigurationError("max_connections must be at least 1")
        self._sentinel: Sentinel | None = None
        self._scripts = scripts
        self._closed = False
        self._owns_pool = False
        self._preload_lock = threading.Lock()
        self._preloaded_pid = 0
        self.retry_budget = retry_budget
        self._retry_max_attempts = retry_max_attempts
        self._budget_override = threading.local()
        self._ttl_for: tuple[float, int, float] = (-1.0, 0, 0.0)
        self._open(
            url,
            PoolOptions(
                max_connections, pool_timeout, socket_timeout, socket_connect_timeout, redis_kwargs
            ),
        )

    def _open(self, url: Any, options: PoolOptions) -> None:
        """Build or borrow the pool (``ClusterConnection`` opens a cluster client instead);
        sets ``client`` and the socket timeout the outcome TTL is derived from."""
        if url is None:
            url = default_url()
        if isinstance(url, redis.Redis):
            self.pool: redis.ConnectionPool = url.connection_pool
            self._description = "borrowed redis.Redis"
        elif isinstance(url, redis.ConnectionPool):
            self.pool = url
            self._description = "borrowed pool"
        elif isinstance(url, (SentinelTarget, str)) and (
            isinstance(url, SentinelTarget) or url.startswith(SENTINEL_SCHEMES)
        ):
            target = url if isinstance(url, SentinelTarget) else SentinelTarget.from_url(url)
            timeouts = {
                "socket_timeout": options.socket_timeout,
                "socket_connect_timeout": options.socket_connect_timeout,
            }
            sentinel: Any = _SENTINEL_CLASS(
                list(target.sentinels), sentinel_kwargs={**timeouts, **target.sentinel_kwargs}
            )
            self._sentinel = sentinel
            self.pool = sentinel.master_for(
                target.service_name,
                connection_pool_class=FairSentinelConnectionPool,
                max_connections=options.max_connections,
                timeout=options.pool_timeout,
                retry=Retry(NoBackoff(), 0),
                **timeouts,
                **{**target.redis_kwargs, **options.redis_kwargs},
            ).connection_pool
            self._owns_pool = True
            where = ",".join(f"{host}:{port}" for host, port in target.sentinels)
            self._description = f"sentinel {target.service_name} via {where}"
        elif isinstance(url, str):
            check_url(url)
            try:
                self.pool = FairConnectionPool.from_url(
                    url,
                    max_connections=options.max_connections,
                    timeout=options.pool_timeout,
                    socket_timeout=options.socket_timeout,
                    socket_connect_timeout=options.socket_connect_timeout,
                    retry=Retry(NoBackoff(), 0),
                    **options.redis_kwargs,
                )
                # Builds (never connects) one socket object: unknown URL options fail here.
                self.pool.connection_class(**self.pool.connection_kwargs)
            except (ValueError, TypeError) as exc:
                raise ConfigurationError(f"bad Redis URL {redact_url(url)!r}: {exc}") from None
            self._owns_pool = True
            self._description = redact_url(url)
        else:
            raise ConfigurationError(
                "connection must be a URL, a redis.Redis, a redis.ConnectionPool or a "
                f"Connection, not {type(url).__name__}"
            )
        self.client = redis.Redis(connection_pool=self.pool)
        """A redis-py client on the same pool, for commands this package does not wrap."""
        self._socket_timeout: float | None = self.pool.connection_kwargs.get("socket_timeout")

    @property
    def outcome_ttl_ms(self) -> int:
        """How long (ms) an outcome key must live for this connection's retries to reach it.

        Derived from ``retry_budget`` and the pool's socket timeout (see ``outcome_ttl_ms()``;
        a repeat later than ``send_window()`` is refused); transition calls sent here carry it
        in place of ``OUTCOME_TTL_MS``.
        """
        return self._outcome_policy()[0]

    def _outcome_policy(self) -> tuple[int, float]:
        """(outcome TTL ms, send window s) for the current ``retry_budget``."""
        budget, ttl, window = self._ttl_for
        if budget != self.retry_budget:
            budget, timeout = self.retry_budget, self._socket_timeout
            ttl = outcome_ttl_ms(retry_budget=budget, socket_timeout=timeout)
            window = send_window(retry_budget=budget, socket_timeout=timeout)
            self._ttl_for = (self.retry_budget, ttl, window)
        return ttl, window

    def _guarded(self, args: Sequence[Any]) -> tuple[Sequence[Any], Callable[[Any], Any]]:
        """A transition's args with its TTL filled in, and the check to run before each send."""
        ttl, window = self._outcome_policy()
        filled = fill_outcome_ttl(args, ttl)
        if filled is args:
            return args, _unguarded
        return filled, SendWindow(window).check

    @classmethod
    def coerce(
        cls, value: Connection | str | redis.Redis | redis.ConnectionPool | RedisCluster | None
    ) -> Connection:
        """``value`` if it is a Connection, else a new Connection built from it."""
        if isinstance(value, Connection):
            return value
        return cls(value)

    @classmethod
    def sentinel(
        cls,
        sentinels: Iterable[tuple[str, int]],
        service_name: str = "mymaster",
        *,
        sentinel_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Connection:
        """A Connection to the primary the sentinels watch as ``service_name``; follows failovers.

        ``sentinel_kwargs`` go to the clients talking to the sentinels (e.g. their password);
        every other keyword is a ``Connection`` option or a setting of the primary's sockets.
        """
        addresses = tuple((host, int(port)) for host, port in sentinels)
        target = SentinelTarget(addresses, service_name, dict(sentinel_kwargs or {}))
        if not target.sentinels:
            raise ConfigurationError("Connection.sentinel() needs at least one (host, port)")
        return cls(target, **kwargs)

    def check_queue_keys(self, keys: QueueKeys) -> None:
        """Refuse a queue that cannot work on this server (a no-op except on Redis Cluster)."""

    def __repr__(self) -> str:
        return f"<Connection {self._description}{' closed' if self._closed else ''}>"

    @property
    def owns_pool(self) -> bool:
        """True when ``close()`` will disconnect the pool (it was created from a URL)."""
        return self._owns_pool

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Disconnect the pool if this object created it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._owns_pool:
            self._disconnect()

    def _disconnect(self) -> None:
        self.pool.disconnect()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running things -------------------------------------------------------------------

    def execute(self, *args: Any) -> Any:
        """Run one Redis command (retried on transient errors); bytes replies become str."""
        return self._with_retry(lambda: _decode(self._once(lambda c: _command(c, args))))

    def pipeline(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Run several read commands in one round trip (not a transaction)."""
        return self._with_retry(lambda: _decode(self._once(lambda c: _pipeline(c, commands))))

    def run_script(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run ``lua/<name>.lua`` by SHA, loading it if Redis lost it; str replies."""
        script = self._scripts.get(name)
        args, guard = self._guarded(args)
        return self._with_retry(
            lambda: _decode(self._once(lambda c: self._evalsha(c, script, keys, guard(args))))
        )

    def _script_batch(
        self, name: str, calls: Iterable[tuple[Sequence[str], Sequence[Any]]]
    ) -> tuple[Script, list[tuple[list[str], list[Any]]], Callable[[Any], Any] | None]:
        """The script, its calls with the outcome TTL filled in, and the send-window check to
        run before each send (None when no call stores an outcome)."""
        script = self._scripts.get(name)
        ttl, window = self._outcome_policy()
        given = list(calls)
        batch = [(list(keys), list(fill_outcome_ttl(args, ttl))) for keys, args in given]
        outcomes = any(OUTCOME_TTL_MS in args for _, args in given)
        return script, batch, SendWindow(window).check if outcomes else None

    def run_script_many(
        self, name: str, calls: Iterable[tuple[Sequence[str], Sequence[Any]]]
    ) -> list[Any]:
        """Run one script several times in one round trip (each call atomic on its own)."""
        script, batch, check = self._script_batch(name, calls)
        guard = check or _unguarded

        def send(connection: Any) -> list[Any]:
            guard(())
            commands = [("EVALSHA", script.sha, len(keys), *keys, *args) for keys, args in batch]
            return _pipeline(connection, commands, raise_errors=False)

        def attempt(connection: Any) -> list[Any]:
            replies = send(connection)
            if any(
                isinstance(r, redis.exceptions.ResponseError) and is_noscript(r) for r in replies
            ):
                _command(connection, ("SCRIPT", "LOAD", script.source))
                replies = send(connection)
            for reply in replies:
                if isinstance(reply, redis.exceptions.ResponseError):
                    if is_readonly(reply):
                        raise reply
                    raise ScriptFailed(str(reply), script=name)
            return replies

        return self._with_retry(lambda: _decode(self._once(attempt)))

    def dedicated(
        self,
        *,
        socket_timeout: float | None = None,
        key: str | None = None,
        client_name: str | None = None,
    ) -> redis.Redis:
        """A separate, unpooled client for blocking reads (BZPOPMIN, XREAD BLOCK).

        ``key`` (a key of the queue) picks the node on Redis Cluster; it is ignored elsewhere.
        ``client_name``: the socket's ``CLIENT SETNAME`` (see ``workers_list``).
        """
        self._check_open()
        return self._dedicated_client(socket_timeout, key, client_name)

    def _dedicated_client(
        self, socket_timeout: float | None, key: str | None, client_name: str | None
    ) -> redis.Redis:
        return dedicated_client(self.pool, socket_timeout, client_name)

    def blocking_reader(
        self, key: str, *, socket_timeout: float | None = None, client_name: str | None = None
    ) -> BlockingReader:
        """A dedicated socket for blocking reads of ``key`` (BZPOPMIN, XREAD BLOCK).

        ``client_name`` names the socket (``CLIENT SETNAME``, repeated on every reconnect):
        a Worker passes BullMQ's worker name so Node's ``getWorkers()`` lists it.
        """
        self._check_open()
        return BlockingReader(self, key, socket_timeout, client_name)

    def client_lists(self) -> list[str]:
        """``CLIENT LIST`` of the server (on Redis Cluster: one reply per primary)."""
        return [str(self.execute("CLIENT", "LIST"))]

    # -- internals ------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosed(f"{self!r} is closed")

    def _once(self, work: Callable[[Any], T]) -> T:
        self._check_open()
        connection: Any = self.pool.get_connection()
        try:
            if self._preloaded_pid != _Process.pid:
                self._preload(connection)
            return work(connection)
        except UnicodeEncodeError as exc:
            # Raised while packing the command, before a byte was sent: the socket is clean.
            raise unencodable(exc) from None
        except BaseException:
            # A connection that failed mid-command may hold a half-read reply.
            connection.disconnect()
            raise
        finally:
            self.pool.release(connection)

    def _preload(self, connection: Any) -> None:
        with self._preload_lock:
            if self._preloaded_pid == _Process.pid:
                return
            scripts = self._scripts.all()
            _pipeline(connection, [("SCRIPT", "LOAD", s.source) for s in scripts])
            self._preloaded_pid = _Process.pid

    def _evalsha(
        self, connection: Any, script: Script, keys: Sequence[str], args: Sequence[Any]
    ) -> Any:
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            return _command(connection, command)
        except redis.exceptions.ResponseError as exc:
            if is_readonly(exc):
                raise
            if not is_noscript(exc):
                raise ScriptFailed(f"{script.name}: {exc}", script=script.name) from exc
        reloads = 0
        while True:
            reloads += 1
            log.script_reloaded(script.name)
            _command(connection, ("SCRIPT", "LOAD", script.source))
            try:
                return _command(connection, command)
            except redis.exceptions.ResponseError as exc:
                if reloads == MAX_RELOADS or not is_noscript(exc):
                    raise

    @contextmanager
    def short_budget(self, seconds: float = INTERACTIVE_RETRY_BUDGET) -> Iterator[None]:
        """Within this block, calls made by this thread give up after ``seconds`` of failures.

        For interactive views (a notebook's ``_repr_html_``) that must answer quickly when
        Redis is down; other threads keep the connection's ``retry_budget``. The budget counts
        from the start of each call, and a new socket's connect timeout is capped to it, so a
        call gives up after about ``seconds`` even on a host that does not answer.
        """
        previous = getattr(self._budget_override, "seconds", None)
        previous_connect = getattr(_INTERACTIVE, "connect_timeout", None)
        self._budget_override.seconds = min(seconds, self.retry_budget)
        _INTERACTIVE.connect_timeout = seconds
        try:
            yield
        finally:
            self._budget_override.seconds = previous
            _INTERACTIVE.connect_timeout = previous_connect

    def _with_retry(self, call: Callable[[], T]) -> T:
        begun = time.monotonic()
        try:
            return call()
        except BullMQSyncError:
            raise
        except Exception as exc:
            if not is_transient(exc):
                raise self._map_error(exc, attempts=1, elapsed=0.0, ambiguous=False) from exc
            first = exc
        return self._retry_after(call, first, begun)

    def _map_error(
        self, exc: BaseException, *, attempts: int, elapsed: float, ambiguous: bool
    ) -> BullMQSyncError:
        return map_redis_error(
            exc,
            attempts=attempts,
            ambiguous=ambiguous,
            where=self._description,
            elapsed=elapsed,
            password_given=bool(getattr(self.pool, "connection_kwargs", {}).get("password"))
            if hasattr(self, "pool")
            else None,
        )

    def _retry_after(self, call: Callable[[], T], first: BaseException, begun: float) -> T:
        """Retry ``call`` after its first attempt failed with ``first`` (a transient error).

        The budget is counted from that first failure: attempts are repeated with exponential
        backoff and jitter, the last one starts when the budget is spent, and no attempt starts
        after it. One warning is logged now and one summary when the call succeeds or gives up.
        """
        started = time.monotonic()
        budget = getattr(self._budget_override, "seconds", None)
        if budget is None:
            budget = self.retry_budget
            deadline = started + budget
        else:  # short_budget(): counted from the start of the call
            deadline = begun + budget
        attempts = 1
        log.redis_retry(attempt=1, error=first, elapsed=0.0, where=self._description, budget=budget)
        backoff = wait_random_exponential(multiplier=0.05, max=1.0)

        def wait(state: RetryCallState) -> float:
            return max(0.0, min(backoff(state), deadline - time.monotonic()))

        def stop(state: RetryCallState) -> bool:
            return attempts >= self._retry_max_attempts or time.monotonic() >= deadline

        def before_sleep(state: RetryCallState) -> None:
            if attempts > 1:  # the first failure was logged as the warning above
                error = state.outcome.exception() if state.outcome is not None else None
                log.redis_retry_attempt(attempt=attempts, error=error)

        replayed = False

        def again() -> T:
            nonlocal attempts, replayed
            if not replayed:
                # Tenacity sees the first failure too, so it backs off before attempt 2.
                replayed = True
                raise first
            attempts += 1
            return call()

        retrying = Retrying(
            retry=retry_if_exception(is_transient),
            stop=stop,
            wait=wait,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            result = retrying(again)
        except BullMQSyncError:
            raise
        except Exception as exc:
            elapsed = time.monotonic() - started
            log.redis_gave_up(attempts=attempts, elapsed=elapsed, where=self._description)
            raise self._map_error(exc, attempts=attempts, elapsed=elapsed, ambiguous=True) from exc
        log.redis_recovered(
            attempts=attempts, elapsed=time.monotonic() - started, where=self._description
        )
        return result


class BlockingReader:
    """One unpooled socket for a blocking command loop, interruptible from another thread.

    ``call(*args)`` runs one blocking command (``BZPOPMIN``, ``XREAD ... BLOCK``) with the
    connection's retry policy, returning str replies, or None once ``interrupt()`` was called
    (which shuts the socket down, so a pending read returns at once). On Redis Cluster the
    socket is on the primary that owns ``key``.
    """

    def __init__(
        self,
        connection: Connection,
        key: str,
        socket_timeout: float | None,
        client_name: str | None = None,
    ) -> None:
        self._connection = connection
        self._key = key
        self._socket_timeout = socket_timeout
        self._client_name = client_name
        self._lock = threading.Lock()
        self._socket: Any = None
        self._interrupted = False

    def call(self, *args: Any) -> Any:
        """Run one blocking command; None when interrupted."""
        return self._connection._with_retry(lambda: self._attempt(args))

    def _attempt(self, args: Sequence[Any]) -> Any:
        if self._interrupted:
            return None
        socket = self._checkout()
        try:
            return _decode(_command(socket, args))
        except Exception:
            socket.disconnect()
            if self._interrupted:
                return None
            with self._lock:
                self._socket = None  # the next attempt reconnects (after a failover: elsewhere)
            raise

    def _checkout(self) -> Any:
        with self._lock:
            if self._socket is None:
                client = self._connection.dedicated(
                    socket_timeout=self._socket_timeout,
                    key=self._key,
                    client_name=self._client_name,
                )
                self._socket = client.connection_pool.get_connection()
            return self._socket

    def interrupt(self) -> None:
        """Make a pending and every later ``call`` return None at once."""
        self._interrupted = True
        with self._lock:
            socket = self._socket
        if socket is not None and socket._sock is not None:
            try:
                socket._sock.shutdown(_socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        """Interrupt and disconnect."""
        self.interrupt()
        with self._lock:
            socket, self._socket = self._socket, None
        if socket is not None:
            socket.disconnect()


def unencodable(exc: UnicodeEncodeError) -> InvalidArgument:
    """The error for a string Redis cannot receive (e.g. a lone surrogate from os.fsdecode)."""
    text = exc.object if isinstance(exc.object, str) else ""
    # Only the offending character and its position: the string may be job data.
    return InvalidArgument(
        f"a string cannot be encoded as UTF-8 ({text[exc.start : exc.end]!r} at position "
        f"{exc.start}: {exc.reason}); nothing was sent. A file name from os.fsdecode() may "
        "hold such characters: decode the bytes with errors='replace' or keep them as bytes"
    )


def _unguarded(args: Any) -> Any:
    return args


def _fast_packing(connection: Any) -> bool:
    # hiredis packs in C what redis-py's packer checks argument by argument in Python.
    return _hiredis_pack is not None and connection.encoder.encoding == "utf-8"


def _command(connection: Any, args: Sequence[Any]) -> Any:
    if _fast_packing(connection):
        connection.send_packed_command([_hiredis_pack(tuple(args))])  # type: ignore[misc]
    else:
        connection.send_command(*args)
    return connection.read_response()


def _pipeline(
    connection: Any, commands: Sequence[Sequence[Any]], *, raise_errors: bool = True
) -> list[Any]:
    if _fast_packing(connection):
        packed = [b"".join([_hiredis_pack(tuple(c)) for c in commands])]  # type: ignore[misc]
    else:
        packed = connection.pack_commands(commands)
    connection.send_packed_command(packed)
    replies: list[Any] = []
    error: BaseException | None = None
    for _ in commands:
        try:
            replies.append(connection.read_response())
        except redis.exceptions.ResponseError as exc:
            replies.append(exc)
            error = error or exc
    if error is not None and raise_errors:
        raise error
    return replies


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        return {_decode(k): _decode(v) for k, v in value.items()}
    return value


def _names_cluster(target: object) -> bool:
    """True when ``target`` designates a Redis Cluster (without importing redis.cluster eagerly)."""
    if isinstance(target, str):
        return target.startswith(("redis+cluster://", "rediss+cluster://"))
    if target is None or isinstance(target, (redis.Redis, redis.ConnectionPool, SentinelTarget)):
        return False
    from redis.cluster import RedisCluster

    return isinstance(target, RedisCluster)
