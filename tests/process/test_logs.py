"""No log line shows a token: ours, and the ones Hypercorn writes itself (its access log, its errors).

Hypercorn answers some requests without the app (a WebSocket version it does not speak) and logs them
with the raw query string. The process tests run both documented commands with an access log that shows
the query string and the headers a token travels in.
"""

from __future__ import annotations

import logging
import signal
import sys

import pytest
import trio
from trio_websocket import open_websocket_url

from tests.support.helpers import FULL_PROTOCOL
from tests.support.process import HYPERCORN, running
from tests.support.raw_http import get_raw
from trio_ticker.errors import redact_tokens
from trio_ticker.process.logs import HYPERCORN_LOGGERS, TokenRedactingFilter, configure_logging

TOKEN = "log-token-0123456789abcdef"
UPGRADE = (("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="))
ACCESS_LOG_FORMAT = "%(r)s %(s)s q=%(q)s ref=%(f)s auth=%({authorization}i)s protocols=%({sec-websocket-protocol}i)s"
ACCESS_LOG = ("--access-logfile", "-", "--access-logformat", ACCESS_LOG_FORMAT)
ACCESS_LINES = [  # what the requests below log, one line each
    b"GET /ws 1.1 400 q=token=*** ref=- auth=- protocols=-\n",
    b"GET /ws 1.1 404 q=batch=1&token=*** ref=- auth=- protocols=-\n",
    b"GET /prices 1.1 401 q=token=*** ref=http://x/?token=*** auth=- protocols=-\n",
    b"GET /prices 1.1 200 q= ref=- auth=Bearer *** protocols=-\n",
    b"GET /ws 1.1 101 q=token=*** ref=- auth=- protocols=trio-ticker.v1\n",
    b"GET /ws 1.1 101 q= ref=- auth=- protocols=trio-ticker.v1, bearer.***\n",
]


def test_every_form_a_token_travels_in_is_redacted_and_nothing_else() -> None:
    assert redact_tokens(f"GET /ws?batch=1&token={TOKEN}#x") == "GET /ws?batch=1&token=***#x"
    assert redact_tokens(f"Authorization: Bearer {TOKEN}") == "Authorization: Bearer ***"
    assert redact_tokens(f"trio-ticker, bearer.{TOKEN}, other") == "trio-ticker, bearer.***, other"
    assert redact_tokens("event=client_connected client=1 peer=127.0.0.1:5000") == (
        "event=client_connected client=1 peer=127.0.0.1:5000"
    )


def test_the_filter_redacts_formatted_messages_tracebacks_and_stacks() -> None:
    def fail() -> None:
        raise ValueError(f"bad URL /ws?token={TOKEN}")

    try:
        fail()
    except ValueError:
        record = logging.makeLogRecord(
            {"msg": "%(r)s %(q)s", "args": {"r": "GET /ws", "q": f"token={TOKEN}"}, "exc_info": sys.exc_info()}
        )
    record.stack_info = f"Stack (most recent call last): url=/ws?token={TOKEN}"
    assert TokenRedactingFilter().filter(record)
    text = logging.Formatter().format(record)
    assert TOKEN not in text
    assert text.startswith("GET /ws token=***\nTraceback")
    assert "ValueError: bad URL /ws?token=***" in text


def test_hypercorns_loggers_get_the_filter_once() -> None:
    configure_logging("INFO")
    configure_logging("INFO")
    for name in HYPERCORN_LOGGERS:
        filters = logging.getLogger(name).filters
        assert sum(isinstance(existing, TokenRedactingFilter) for existing in filters) == 1


async def send_the_token_every_way(address: str) -> None:
    """Requests carrying TOKEN, through paths Hypercorn answers itself and ones the app answers."""
    status, _, _ = await get_raw(address, f"/ws?token={TOKEN}", (*UPGRADE, ("Sec-WebSocket-Version", "12")))
    assert status == 400  # Hypercorn's own answer: it speaks version 13 only
    status, _, _ = await get_raw(address, f"/ws?batch=1&token={TOKEN}")  # plain HTTP, not a WebSocket
    assert status == 404
    status, _, _ = await get_raw(address, f"/prices?token={TOKEN}", (("Referer", f"http://x/?token={TOKEN}"),))
    assert status == 401  # REST takes the header only
    status, _, _ = await get_raw(address, "/prices", (("Authorization", f"Bearer {TOKEN}"),))
    assert status == 200
    for query, subprotocols in ((f"?token={TOKEN}", FULL_PROTOCOL), ("", (*FULL_PROTOCOL, f"bearer.{TOKEN}"))):
        async with open_websocket_url(f"ws://{address}/ws{query}", subprotocols=subprotocols) as ws:
            await ws.send_message('{"action":"ping"}')
            with trio.fail_after(10):
                await ws.get_message()


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        [HYPERCORN, "trio_ticker.app:app", "--worker-class", "trio", "--bind", "127.0.0.1:0", *ACCESS_LOG],
        [sys.executable, "-m", "trio_ticker"],  # no access log; its error log and ours
    ],
    ids=["hypercorn", "python-m"],
)
async def test_no_log_line_of_either_command_shows_a_token(command: list[str]) -> None:
    async with running(command, capture_stdout=True, TICKER_AUTH_TOKENS=TOKEN, TICKER_PORT="0") as server:
        await send_the_token_every_way(server.address)
        server.process.send_signal(signal.SIGTERM)
        with trio.fail_after(15):
            await server.process.wait()
    logged = server.stdout + server.stderr
    assert TOKEN.encode() not in logged
    if command[0] == HYPERCORN:  # the access log is there, tokens hidden
        for line in ACCESS_LINES:
            assert line in server.stdout
