"""Recovery against a real Hypercorn server on port 0: a client that drops, misses ticks and resubscribes with
`since` sees every seq exactly once, in order, also across a clean restart on the same data directory (the tick
journal); a restart in another epoch replays nothing of the old one; a bogus `since` gets its typed error and
never a tick of another stream."""

from __future__ import annotations

import time
from pathlib import Path

import trio
from trio_websocket import open_websocket_url

from tests.support.edge_server import Server
from tests.support.full_protocol_reader import MessageReader
from tests.support.helpers import FULL_PROTOCOL
from tests.support.live_server import serve_app

SYMBOL = "BTCUSDT"
MISSED = 40


async def wait_for_seq(server: Server, seq: int) -> None:
    with trio.fail_after(10):
        while (tick := server.assembly.hub.latest(SYMBOL)) is None or tick.seq < seq:
            await trio.sleep(0.01)


async def test_a_client_that_missed_ticks_gets_each_seq_exactly_once_in_order(tmp_path: Path) -> None:
    server = Server(data_dir=tmp_path)
    seen: list[int] = []
    async with serve_app(server.app, server.settings) as address:
        url = f"ws://{address}/ws"
        async with open_websocket_url(url + "?batch=1", subprotocols=FULL_PROTOCOL) as ws:
            reader = MessageReader(ws)
            epoch = (await reader.welcome())["epoch"]
            await reader.send({"action": "subscribe", "symbol": SYMBOL})
            assert (await reader.reply())["type"] == "subscribed"
            while len(seen) < 10:
                seen.append((await reader.tick())["seq"])
        await wait_for_seq(server, seen[-1] + MISSED)  # gone while MISSED ticks are published
        async with open_websocket_url(url + "?batch=1", subprotocols=FULL_PROTOCOL) as ws:
            reader = MessageReader(ws)
            assert (await reader.welcome())["epoch"] == epoch
            await reader.send({"action": "subscribe", "symbol": SYMBOL, "since": {SYMBOL: seen[-1]}, "epoch": epoch})
            ack = await reader.reply()
            assert (ack["type"], ack["recovered"], ack["epoch"]) == ("subscribed", {SYMBOL: True}, epoch)
            while len(seen) < 10 + MISSED + 20:
                seen.append((await reader.tick())["seq"])
    assert seen == list(range(seen[0], seen[0] + len(seen)))


async def last_seen_then_gone(address: str) -> tuple[str, int]:
    """A client subscribes, sees a few ticks and leaves: its epoch and the last seq it saw."""
    async with open_websocket_url(f"ws://{address}/ws?batch=1", subprotocols=FULL_PROTOCOL) as ws:
        reader = MessageReader(ws)
        epoch = (await reader.welcome())["epoch"]
        await reader.send({"action": "subscribe", "symbol": SYMBOL})
        for _ in range(3):
            last = (await reader.tick())["seq"]
    return epoch, last


async def test_a_client_recovers_across_a_clean_restart_every_seq_once_in_order(tmp_path: Path) -> None:
    """The first server stops cleanly MISSED ticks after the client left; the restarted one reads them back from the
    tick journal and, once it has published the symbol's first tick of its own, replays them and then goes live."""
    first = Server(data_dir=tmp_path)
    async with serve_app(first.app, first.settings) as address:
        epoch, last = await last_seen_then_gone(address)
        await wait_for_seq(first, last + MISSED)  # published while the client was away
    stopped_at = first.assembly.hub.latest(SYMBOL).seq  # type: ignore[union-attr]
    again = Server(data_dir=tmp_path)
    async with serve_app(again.app, again.settings) as address:
        await wait_for_seq(again, stopped_at + 1)  # recovery answers once the symbol's latest is this process's
        async with open_websocket_url(f"ws://{address}/ws?batch=1", subprotocols=FULL_PROTOCOL) as ws:
            reader = MessageReader(ws)
            assert (await reader.welcome())["epoch"] == epoch
            await reader.send({"action": "subscribe", "symbol": SYMBOL, "since": {SYMBOL: last}, "epoch": epoch})
            ack = await reader.reply()
            assert (ack["recovered"], ack["epoch"]) == ({SYMBOL: True}, epoch)
            seen = []
            while not seen or seen[-1] < stopped_at + 20:  # across the restart, then live
                tick = await reader.tick()
                assert "recovered" not in tick  # replayed ticks, never the snapshot
                seen.append(tick["seq"])
    assert seen == list(range(last + 1, seen[-1] + 1))  # each once, in order, no jump at the restart


async def test_a_restart_in_another_epoch_replays_no_tick_of_the_old_one(tmp_path: Path) -> None:
    """The numbering started over (its file removed) while the journal kept the old epoch's ticks: the old position
    gets `recovered: false`, and a client of the new epoch is replayed only ticks the new server published."""
    first = Server(data_dir=tmp_path)
    async with serve_app(first.app, first.settings) as address:
        old_epoch, last = await last_seen_then_gone(address)
        await wait_for_seq(first, last + MISSED)
    (tmp_path / "numbering.sqlite3").unlink()
    restarted_ms = time.time() * 1000
    again = Server(data_dir=tmp_path)
    async with (
        serve_app(again.app, again.settings) as address,
        open_websocket_url(f"ws://{address}/ws?batch=1", subprotocols=FULL_PROTOCOL) as ws,
    ):
        reader = MessageReader(ws)
        new_epoch = (await reader.welcome())["epoch"]
        assert new_epoch != old_epoch
        await reader.send({"action": "subscribe", "symbol": SYMBOL, "since": {SYMBOL: last}, "epoch": old_epoch})
        assert (await reader.reply())["recovered"] == {SYMBOL: False}
        snapshot = await reader.tick()
        assert (snapshot["epoch"], snapshot["recovered"]) == (new_epoch, False)
        await reader.send({"action": "unsubscribe", "symbol": SYMBOL})
        await reader.reply()
        await wait_for_seq(again, 5)
        published = again.assembly.hub.latest(SYMBOL).seq  # type: ignore[union-attr]
        await reader.send({"action": "subscribe", "symbol": SYMBOL, "since": {SYMBOL: 0}, "epoch": new_epoch})
        assert (await reader.reply())["recovered"] == {SYMBOL: True}
        replayed = [await reader.tick() for _ in range(published)]
    assert [tick["seq"] for tick in replayed] == list(range(1, published + 1))
    assert all(tick["ts"] >= restarted_ms for tick in replayed)  # the new server's, none of the old one's


async def test_a_bogus_since_gets_invalid_since_or_the_snapshot_never_other_ticks(tmp_path: Path) -> None:
    server = Server(data_dir=tmp_path)
    async with (
        serve_app(server.app, server.settings) as address,
        open_websocket_url(f"ws://{address}/ws?batch=1", subprotocols=FULL_PROTOCOL) as ws,
    ):
        reader = MessageReader(ws)
        epoch = (await reader.welcome())["epoch"]
        for since in ({SYMBOL: -1}, {SYMBOL: "7"}, {"DOGEUSDT": 1}, {SYMBOL: 1, "AAPL": 2, "MSFT": 3}):
            await reader.send({"action": "subscribe", "symbols": [SYMBOL, "AAPL"], "since": since, "epoch": epoch})
            reply = await reader.reply()
            assert (reply["type"], reply["code"]) == ("error", "invalid_since"), since
        await wait_for_seq(server, 5)
        future = server.assembly.hub.latest(SYMBOL).seq + 1_000_000  # type: ignore[union-attr]
        await reader.send({"action": "subscribe", "symbol": SYMBOL, "since": {SYMBOL: future}, "epoch": epoch})
        assert (await reader.reply())["recovered"] == {SYMBOL: False}
        snapshot = await reader.tick()
        assert snapshot["recovered"] is False and snapshot["seq"] < future
        await reader.send({"action": "subscribe", "symbol": "AAPL", "since": {"AAPL": 1}, "epoch": "another-run"})
        assert (await reader.reply())["recovered"] == {"AAPL": False}
        assert (await reader.tick())["recovered"] is False
