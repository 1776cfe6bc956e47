"""The shared store in Redis, through coredis (the only module that imports it).

Every operation is one Lua script or command, so each is atomic: the publish script checks the
fencing token and numbers ticks in the same step, which is what keeps a deposed leader out.
Keys share `TICKER_REDIS_PREFIX`; docs/architecture.md lists them.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import coredis
from coredis.exceptions import RedisError

from ...model import Listing
from ...tick_codec import EntryError
from .codec import Publishable, Snapshot, decode_listing, decode_snapshot, encode_item, encode_listing
from .store import StoreUnavailable, StreamEntry

T = TypeVar("T")

# The lease's value is "token:holder": INCR orders the leaders, and the holder (random per store) keeps
# a value unique even when Redis restarts without its data and INCR starts again from 1.
ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token .. ':' .. ARGV[2], 'PX', ARGV[1])
return token
"""

RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: leader, seq, latest, stale, sources, stream. ARGV: token, maxlen, then (kind, key, body) triples.
PUBLISH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
for i = 3, #ARGV, 3 do
  local kind, key, body = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if kind == 'tick' then
    local seq = redis.call('HINCRBY', KEYS[2], key, 1)
    redis.call('HSET', KEYS[3], key, seq .. ':' .. body)
    redis.call('HDEL', KEYS[4], key)
    redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[2], '*', 'kind', kind, 'key', key, 'seq', seq, 'body', body)
  else
    if kind ~= 'rejected' then redis.call('HSET', kind == 'stale' and KEYS[4] or KEYS[5], key, body) end
    redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[2], '*', 'kind', kind, 'key', key, 'body', body)
  end
end
return (#ARGV - 2) / 3
"""

# KEYS: latest, stale, sources, stream. Redis's TIME too: the clock its stream ids are made from.
SNAPSHOT = """
local last = redis.call('XREVRANGE', KEYS[4], '+', '-', 'COUNT', 1)
local cursor = '0-0'
if #last > 0 then cursor = last[1][1] end
local now = redis.call('TIME')
local now_ms = now[1] * 1000 + math.floor(now[2] / 1000)
return {
  cursor, redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3]), now_ms
}
"""

# KEYS: seq. ARGV: (symbol, seq) pairs.
RAISE_SEQ_FLOOR = """
for i = 1, #ARGV, 2 do
  if tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0') < tonumber(ARGV[i + 1]) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return 0
"""


# KEYS: epoch. ARGV: a new epoch, used only when none is stored.
EPOCH = """
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
"""

# KEYS: workers (sorted set: worker -> when its interest expires), the worker's interest hash.
# ARGV: worker, lease ms, then (symbol, listing) pairs. Expiry is Redis's own clock, so workers' clocks do not matter.
PUBLISH_INTEREST = """
local now = redis.call('TIME')
local now_ms = now[1] * 1000 + math.floor(now[2] / 1000)
redis.call('DEL', KEYS[2])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[2]), ARGV[1])
return 0
"""

# KEYS: workers. ARGV: the interest hashes' key prefix. Forgets expired workers, returns the live ones' hashes.
READ_INTEREST = """
local now = redis.call('TIME')
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now[1] * 1000 + math.floor(now[2] / 1000))
local hashes = {}
for _, worker in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  table.insert(hashes, redis.call('HGETALL', ARGV[1] .. worker))
end
return hashes
"""


class RedisKeys:
    def __init__(self, prefix: str) -> None:
        self.leader = f"{prefix}:leader"
        self.fence = f"{prefix}:fence"
        self.seq = f"{prefix}:seq"
        self.latest = f"{prefix}:latest"
        self.stale = f"{prefix}:stale"
        self.sources = f"{prefix}:sources"
        self.stream = f"{prefix}:ticks"
        self.epoch = f"{prefix}:epoch"
        self.interest_workers = f"{prefix}:interest"
        self.interest = f"{prefix}:interest:"  # + worker: its on-demand symbols -> listing JSON


class RedisStore:
    """`ScaleOutStore` over one coredis client; every Redis failure becomes `StoreUnavailable`."""

    def __init__(self, client: coredis.Redis[str], *, prefix: str, stream_maxlen: int) -> None:
        self._client = client
        self.keys = RedisKeys(prefix)
        self._maxlen = stream_maxlen
        self._holder = secrets.token_hex(8)
        self._acquire = client.register_script(ACQUIRE)
        self._renew = client.register_script(RENEW)
        self._release = client.register_script(RELEASE)
        self._publish = client.register_script(PUBLISH)
        self._snapshot = client.register_script(SNAPSHOT)
        self._raise_seq_floor = client.register_script(RAISE_SEQ_FLOOR)
        self._epoch = client.register_script(EPOCH)
        self._publish_interest = client.register_script(PUBLISH_INTEREST)
        self._read_interest = client.register_script(READ_INTEREST)

    async def try_acquire(self, lease: float) -> int | None:
        keys = self.keys
        token: Any = await _checked(
            self._acquire(keys=[keys.leader, keys.fence], args=[_milliseconds(lease), self._holder])
        )
        return int(token) or None

    async def renew(self, token: int, lease: float) -> bool:
        renewed: Any = await _checked(
            self._renew(keys=[self.keys.leader], args=[self._value(token), _milliseconds(lease)])
        )
        return bool(renewed)

    async def release(self, token: int) -> None:
        await _checked(self._release(keys=[self.keys.leader], args=[self._value(token)]))

    async def publish(self, token: int, items: Sequence[Publishable]) -> bool:
        keys = self.keys
        args: list[str | bytes | int] = [self._value(token), self._maxlen]
        for item in items:
            args.extend(encode_item(item))
        script_keys = [keys.leader, keys.seq, keys.latest, keys.stale, keys.sources, keys.stream]
        published: Any = await _checked(self._publish(keys=script_keys, args=args))
        return int(published) != -1

    async def load_snapshot(self) -> Snapshot:
        keys = self.keys
        reply: Any = await _checked(
            self._snapshot(keys=[keys.latest, keys.stale, keys.sources, keys.stream], readonly=True)
        )
        cursor, latest, stale, sources, now_ms = reply
        return decode_snapshot(cursor, _pairs(latest), _pairs(stale), _pairs(sources), now_ms=int(now_ms))

    async def read(self, cursor: str, block: float) -> list[StreamEntry]:
        stream = self.keys.stream
        reply = await _checked(self._client.xread({stream: cursor}, count=1000, block=_milliseconds(block)))
        if not reply:
            return []
        # decode_responses=True: identifiers and fields are str.
        return [(str(entry.identifier), entry.field_values) for entry in reply.get(stream, ())]  # type: ignore[misc]

    async def read_range(self, after: str, until: str, count: int) -> list[StreamEntry]:
        reply = await _checked(self._client.xrange(self.keys.stream, start=f"({after}", end=until, count=count))
        return [(str(entry.identifier), entry.field_values) for entry in reply]  # type: ignore[misc]

    async def stream_epoch(self) -> str:
        epoch: Any = await _checked(self._epoch(keys=[self.keys.epoch], args=[secrets.token_hex(8)]))
        return str(epoch)

    def _value(self, token: int) -> str:
        return f"{token}:{self._holder}"

    async def raise_seq_floor(self, seqs: Mapping[str, int]) -> None:
        args: list[str | int] = []
        for symbol, seq in seqs.items():
            args.extend((symbol, seq))
        if args:
            await _checked(self._raise_seq_floor(keys=[self.keys.seq], args=args))

    async def publish_interest(self, worker: str, listings: Mapping[str, Listing], lease: float) -> None:
        keys = self.keys
        args: list[str | int] = [worker, _milliseconds(lease)]
        for symbol, listing in listings.items():
            args.extend((symbol, encode_listing(listing)))
        await _checked(self._publish_interest(keys=[keys.interest_workers, keys.interest + worker], args=args))

    async def read_interest(self) -> dict[str, Listing]:
        reply: Any = await _checked(self._read_interest(keys=[self.keys.interest_workers], args=[self.keys.interest]))
        wanted: dict[str, Listing] = {}
        for flat in reply:
            for symbol, body in _pairs(flat).items():
                try:
                    wanted[symbol] = decode_listing(body)
                except EntryError:
                    continue  # another version's worker: its symbol is not streamed from here
        return wanted


@asynccontextmanager
async def open_redis_store(
    url: str, *, prefix: str, stream_maxlen: int, connect_timeout: float
) -> AsyncIterator[RedisStore]:
    """A client with its own connection pool; leaving the block closes its connections."""
    client = coredis.Redis.from_url(url, decode_responses=True, connect_timeout=connect_timeout)
    try:
        async with client:
            yield RedisStore(client, prefix=prefix, stream_maxlen=stream_maxlen)
    except* (RedisError, OSError) as group:
        raise StoreUnavailable(_describe(group.exceptions[0])) from group


async def _checked(request: Awaitable[T]) -> T:
    try:
        return await request
    except (RedisError, OSError) as error:
        raise StoreUnavailable(_describe(error)) from error


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _milliseconds(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _pairs(flat: Sequence[str] | Mapping[str, str]) -> dict[str, str]:
    """HGETALL inside a script replies as a flat [field, value, ...] list."""
    if isinstance(flat, Mapping):
        return dict(flat)
    return dict(zip(flat[::2], flat[1::2], strict=True))
