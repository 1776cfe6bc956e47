"""What a session logs: one INFO line per client, when it ends, saying everything (a reconnect storm opens thousands
of sessions within a second, and a line per connect was a share of each handshake's cost); the connect at DEBUG."""

from __future__ import annotations

import logging

import trio

from tests.support.delivery import Delivery
from tests.support.memory_transport import MemoryTransport
from trio_ticker.protocol.dialects import Dialect


async def serve_one_client(delivery: Delivery, *, dialect: Dialect, batch: bool) -> None:
    transport = MemoryTransport(client_window=10)
    session = delivery.session(transport, peer="10.0.0.7:5123", dialect=dialect, batch=batch)
    async with trio.open_nursery() as nursery:
        await nursery.start(session.run)
        await transport.client_send({"action": "subscribe", "symbols": ["AAPL"]})
        await transport.client_receive_raw()  # the ack (the full protocol) or nothing yet (the prototypes')
        await transport.client_disconnect()


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_a_client_gets_one_info_line_when_it_leaves_and_its_connect_is_debug(
    autojump_clock: trio.abc.Clock,
) -> None:
    delivery = Delivery(("AAPL",), client_buffer=8)
    logger, recorder = logging.getLogger("trio_ticker.edge.session"), Recorder()
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(recorder)
    try:
        await serve_one_client(delivery, dialect=Dialect.FULL, batch=True)
    finally:
        logger.removeHandler(recorder)
        logger.setLevel(level)
    session_lines = [(record.levelname, record.getMessage()) for record in recorder.records]
    client_id = session_lines[0][1].split("client=")[1].split()[0]
    assert session_lines == [
        ("DEBUG", f"event=client_connected client={client_id} peer=10.0.0.7:5123 dialect=full batch=True"),
        (
            "INFO",
            f"event=client_closed client={client_id} peer=10.0.0.7:5123 dialect=full batch=True code=1000 "
            "reason=peer left",
        ),
    ]
