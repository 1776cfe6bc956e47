"""HTTP/1.1 requests sent exactly as written, through h11: HTTP clients normalise a URL before sending it
(dot segments removed), and cannot send a WebSocket upgrade that Hypercorn answers itself."""

from __future__ import annotations

import h11
import trio


async def get_raw(
    address: str, target: str, headers: tuple[tuple[str, str], ...] = ()
) -> tuple[int, dict[bytes, bytes], bytes]:
    """GET `target` from "HOST:PORT" with `headers`; returns the status, the headers and the body."""
    host, port = address.split(":")
    client = h11.Connection(h11.CLIENT)
    request = h11.Request(method="GET", target=target.encode(), headers=[("Host", address), *headers])
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream(host, int(port))
        async with stream:
            await stream.send_all(client.send(request) + client.send(h11.EndOfMessage()))
            status, response_headers, body = 0, {}, b""
            while not isinstance(event := client.next_event(), h11.EndOfMessage):
                if event is h11.NEED_DATA:
                    client.receive_data(await stream.receive_some())
                elif isinstance(event, h11.Response):
                    status, response_headers = event.status_code, dict(event.headers)
                elif isinstance(event, h11.Data):
                    body += event.data
    return status, response_headers, body
