"""Recovery against a real Hypercorn server on port 0: a client that drops, misses ticks and resubscribes with
`since` sees every seq exactly once, in order; a restart on the same data directory keeps the epoch and the
seqs; a bogus `since` gets its typed error and never a tick of another stream."""

from __future__ import annotations

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


async def test_a_restart_keeps_the_epoch_and_the_seqs_go_on(tmp_path: Path) -> None:
    first = Server(data_dir=tmp_path)
    async with (
        serve_app(first.app, first.settings) as address,
        open_websocket_url(f"ws://{address}/ws?batch=1", subprotocols=FULL_PROTOCOL) as ws,
    ):
        reader = MessageReader(ws)
        epoch = (await reader.welcome())["epoch"]
        await reader.send({"action": "subscribe", "symbol": SYMBOL})
        last = (await reader.tick())["seq"]
        await wait_for_seq(first, last + 5)  # it misses a few before the server stops
    again = Server(data_dir=tmp_path)
    async with (
        serve_app(again.app, again.settings) as address,
        open_websocket_url(f"ws://{address}/ws?batch=1", subprotocols=FULL_PROTOCOL) as ws,
    ):
        reader = MessageReader(ws)
        assert (await reader.welcome())["epoch"] == epoch
        await reader.send({"action": "subscribe", "symbol": SYMBOL, "since": {SYMBOL: last}, "epoch": epoch})
        ack = await reader.reply()
        assert ack["recovered"] == {SYMBOL: False}  # what it missed went with the old process's memory
        snapshot = await reader.tick()
    assert (snapshot["epoch"], snapshot["recovered"]) == (epoch, False)
    assert snapshot["seq"] > last  # numbered on from where the first server stopped, not from 1


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
