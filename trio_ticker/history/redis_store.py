"""The shared candle store in Redis, through coredis: one sorted set per symbol and interval.

Key `{prefix}:candles:{interval}:{symbol}`, score = open time, member = the candle as a JSON array
of decimal strings. Writes are one Lua script that replaces each candle only if the member is still
what the merge was computed from, so a batch retried after a lost reply is not merged twice.
A source's catalogue is one JSON string, `{prefix}:listings:{source}`, replaced whole by one SET.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import coredis
import orjson
import trio
from coredis.exceptions import RedisError

from ..model import Listing
from .candles import Candle, Interval, plain
from .store import CandleStoreUnavailable, CandleWrite, Retention, StoredListings

T = TypeVar("T")

UNCONDITIONAL = "*"
ABSENT = ""
WRITE_CHUNK = 500  # candles per script call: a few milliseconds of Redis time

# KEYS: one series per write. ARGV: (open_time, expected member or '' or '*', new member) per write.
WRITE = """
for i = 1, #KEYS do
  local t, expected, member = ARGV[3 * i - 2], ARGV[3 * i - 1], ARGV[3 * i]
  local current = redis.call('ZRANGEBYSCORE', KEYS[i], t, t)[1]
  if expected ~= '*' and current ~= member and (current or '') ~= expected then return i end
  if current ~= member then
    redis.call('ZREMRANGEBYSCORE', KEYS[i], t, t)
    redis.call('ZADD', KEYS[i], t, member)
  end
end
return 0
"""

# KEYS: one series per point. ARGV: the open times. Returns each member, or false.
POINTS = """
local found = {}
for i = 1, #KEYS do found[i] = redis.call('ZRANGEBYSCORE', KEYS[i], ARGV[i], ARGV[i])[1] or false end
return found
"""

# KEYS[1]: the series. ARGV: lower, upper, limit, '1' for the newest first.
READ = """
if ARGV[4] == '1' then
  return redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[2], ARGV[1], 'LIMIT', 0, ARGV[3])
end
return redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[2], 'LIMIT', 0, ARGV[3])
"""

# KEYS: series. ARGV: (cutoff or '', max kept) per series. Returns how many members went.
PRUNE = """
local removed = 0
for i = 1, #KEYS do
  local cutoff, keep = ARGV[2 * i - 1], tonumber(ARGV[2 * i])
  if cutoff ~= '' then removed = removed + redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', '(' .. cutoff) end
  removed = removed + redis.call('ZREMRANGEBYRANK', KEYS[i], 0, -(keep + 1))
end
return removed
"""


class StoreConflict(CandleStoreUnavailable):
    """A candle changed in Redis between reading it for a merge and writing the merge: read again."""


class RedisCandleStore:
    name = "redis"

    def __init__(self, client: coredis.Redis[str], *, prefix: str, command_timeout: float) -> None:
        self._client = client
        self._prefix = prefix
        self._timeout = command_timeout
        self._write = client.register_script(WRITE)
        self._points = client.register_script(POINTS)
        self._read = client.register_script(READ)
        self._prune = client.register_script(PRUNE)

    def key(self, symbol: str, interval: Interval) -> str:
        return f"{self._prefix}:candles:{interval.value}:{symbol}"

    async def write(self, writes: Sequence[CandleWrite]) -> list[Candle]:
        """In script calls of at most WRITE_CHUNK candles, so no call holds Redis up for long (the ingest
        leader's lease shares it). A batch retried after a failed chunk is safe: replacing is idempotent,
        and a merge already written is found as written and kept."""
        results: list[Candle] = []
        for start in range(0, len(writes), WRITE_CHUNK):
            results.extend(await self._write_chunk(writes[start : start + WRITE_CHUNK]))
        return results

    async def _write_chunk(self, writes: Sequence[CandleWrite]) -> list[Candle]:
        stored = await self._stored_for_merges(writes)
        keys: list[str] = []
        args: list[str | int] = []
        results: list[Candle] = []
        for write in writes:
            candle = write.candle
            key = self.key(candle.symbol, candle.interval)
            point = (key, candle.open_time)
            before = stored.get(point)
            result = write.applied_to(before)
            stored[point] = result
            keys.append(key)
            expected = UNCONDITIONAL if write.merge_from is None else (ABSENT if before is None else _member(before))
            args.extend((candle.open_time, expected, _member(result)))
            results.append(result)
        conflict: Any = await self._call(self._write(keys=keys, args=args))
        if int(conflict):
            raise StoreConflict(f"candle {keys[int(conflict) - 1]} changed while it was being merged")
        return results

    async def _stored_for_merges(self, writes: Sequence[CandleWrite]) -> dict[tuple[str, int], Candle | None]:
        points = {
            (self.key(write.candle.symbol, write.candle.interval), write.candle.open_time): write.candle
            for write in writes
            if write.merge_from is not None
        }
        if not points:
            return {}
        keys = [key for key, _ in points]
        found: Any = await self._call(
            self._points(keys=keys, args=[open_time for _, open_time in points], readonly=True)
        )
        return {
            point: None if not member else _decode(member, candle.symbol, candle.interval)
            for (point, candle), member in zip(points.items(), found, strict=True)
        }

    async def read(
        self, symbol: str, interval: Interval, *, start: int | None, end: int | None, limit: int
    ) -> list[Candle]:
        lower = "-inf" if start is None else str(start)
        upper = "+inf" if end is None else str(end)
        newest_first = "0" if start is not None else "1"
        members: Any = await self._call(
            self._read(keys=[self.key(symbol, interval)], args=[lower, upper, limit, newest_first], readonly=True)
        )
        candles = [_decode(member, symbol, interval) for member in members]
        return candles if start is not None else candles[::-1]

    async def prune(self, symbols: Sequence[str], retention: Retention, now_ms: int) -> int:
        keys: list[str] = []
        args: list[str | int] = []
        for interval in Interval:
            cutoff = retention.cutoff(interval, now_ms)
            for symbol in symbols:
                keys.append(self.key(symbol, interval))
                args.extend(("" if cutoff is None else str(cutoff), retention.max_per_series))
        removed: Any = await self._call(self._prune(keys=keys, args=args))
        return int(removed)

    async def check(self) -> None:
        await self._call(self._client.ping())

    async def save_listings(self, source: str, listings: Sequence[Listing], saved_ms: int) -> None:
        rows = [[item.symbol, item.name, item.precision, item.base, item.quote] for item in listings]
        await self._call(self._client.set(self._listings_key(source), orjson.dumps([saved_ms, rows]).decode()))

    async def load_listings(self, source: str) -> StoredListings | None:
        stored = await self._call(self._client.get(self._listings_key(source)))
        if stored is None:
            return None
        try:
            saved_ms, rows = orjson.loads(stored)
            listings = tuple(
                Listing(
                    str(symbol), source, str(name), None if precision is None else int(precision), str(base), str(quote)
                )
                for symbol, name, precision, base, quote in rows
            )
            return StoredListings(listings, int(saved_ms))
        except (orjson.JSONDecodeError, ValueError, TypeError) as error:
            raise CandleStoreUnavailable(f"the {source} catalogue in Redis is not one this version wrote") from error

    def _listings_key(self, source: str) -> str:
        return f"{self._prefix}:listings:{source}"

    async def _call(self, request: Awaitable[T]) -> T:
        try:
            with trio.fail_after(self._timeout):
                return await request
        except (RedisError, OSError) as error:
            raise CandleStoreUnavailable(f"{type(error).__name__}: {error}") from error
        except trio.TooSlowError:
            raise CandleStoreUnavailable(f"Redis did not answer within {self._timeout:g} s") from None


def _member(candle: Candle) -> str:
    fields = [candle.open_time, *map(plain, (candle.open, candle.high, candle.low, candle.close, candle.volume))]
    return orjson.dumps([*fields, candle.trades, candle.updated_ts]).decode()


def _decode(member: str, symbol: str, interval: Interval) -> Candle:
    try:
        open_time, open_, high, low, close, volume, trades, updated_ts = orjson.loads(member)
        return Candle(
            symbol,
            interval,
            int(open_time),
            Decimal(open_),
            Decimal(high),
            Decimal(low),
            Decimal(close),
            Decimal(volume),
            int(trades),
            int(updated_ts),
        )
    except (orjson.JSONDecodeError, ValueError, TypeError, InvalidOperation) as error:
        raise CandleStoreUnavailable(f"candle {member[:80]!r} in Redis is not one this version wrote") from error


@asynccontextmanager
async def open_redis_candle_store(url: str, *, prefix: str, command_timeout: float) -> AsyncIterator[RedisCandleStore]:
    """A client with its own connection pool; the first command proves Redis is there."""
    client = coredis.Redis.from_url(url, decode_responses=True, connect_timeout=command_timeout)
    try:
        async with client:
            store = RedisCandleStore(client, prefix=prefix, command_timeout=command_timeout)
            await store.check()
            yield store
    except* CandleStoreUnavailable as group:  # raised by a command, wrapped by coredis's connection pool
        raise _first_leaf(group) from None
    except* (RedisError, OSError) as group:
        error = _first_leaf(group)
        raise CandleStoreUnavailable(f"{type(error).__name__}: {error}") from group


def _first_leaf(group: BaseExceptionGroup[Exception]) -> Exception:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first
