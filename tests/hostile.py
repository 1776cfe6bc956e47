"""Hostile WebSocket clients on raw sockets: the byte sequences a fuzz run throws at a real server.

Frames are built by hand (wsproto refuses to build broken ones). `hostile_case(rng)` draws one
connection's bytes from a seeded `random.Random`; `run_hostile` sends them and hangs up, reading
whatever the server answers for a moment. Nothing here asserts: the server's survival is the test.
"""

from __future__ import annotations

import base64
import random
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

import trio

from trio_ticker.dialects import FULL_PROTOCOL_V1

READ_FOR = 0.2  # seconds a hostile client listens for the server's answer before it hangs up
TEXT = 0x1
BINARY = 0x2
CLOSE = 0x8
PING = 0x9


def upgrade_request(address: str, *, key: bytes = b"dGhlIHNhbXBsZSBub25jZQ==", extra: str = "") -> bytes:
    return (
        f"GET /ws HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode()


def frame(
    payload: bytes,
    opcode: int = TEXT,
    *,
    mask: bytes | None = b"\x01\x02\x03\x04",
    rsv: int = 0,
    fin: bool = True,
    length: int | None = None,
) -> bytes:
    """One frame; `mask=None` leaves it unmasked (illegal from a client), `length` can lie about the payload."""
    declared = len(payload) if length is None else length
    first = (0x80 if fin else 0) | (rsv & 0x7) << 4 | (opcode & 0xF)
    mask_bit = 0x80 if mask is not None else 0
    if declared < 126:
        head = struct.pack("!BB", first, mask_bit | declared)
    elif declared < 1 << 16:
        head = struct.pack("!BBH", first, mask_bit | 126, declared)
    else:
        head = struct.pack("!BBQ", first, mask_bit | 127, declared)
    if mask is None:
        return head + payload
    return head + mask + bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))


@dataclass(frozen=True)
class HostileCase:
    kind: str
    handshake: bytes  # sent first, in one write
    after_reply: bytes  # sent once the server's handshake reply arrived (b"": nothing)
    reset: bool  # hang up with a TCP reset instead of a FIN


def _random_bytes(rng: random.Random, low: int = 1, high: int = 512) -> bytes:
    return rng.randbytes(rng.randint(low, high))


def _payloads(rng: random.Random) -> dict[str, Callable[[], bytes]]:
    """Frame sequences sent after (or pipelined behind) a valid upgrade request, by kind."""
    ping = b'{"action":"ping"}'
    return {
        "valid_ping": lambda: frame(ping),
        "invalid_utf8": lambda: frame(b'{"action":"\xff\xfe"}'),
        "rsv_bits": lambda: frame(ping, rsv=rng.randint(1, 7)),
        "unmasked": lambda: frame(ping, mask=None),
        "bad_opcode": lambda: frame(ping, opcode=rng.choice([3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])),
        "lone_continuation": lambda: frame(ping, opcode=0),
        "fragmented_control": lambda: frame(b"x", opcode=PING, fin=False),
        "long_control": lambda: frame(b"x" * 126, opcode=PING),
        "huge_length": lambda: frame(b"{", length=rng.choice([1 << 16, 1 << 32, (1 << 63) - 1])),
        "truncated_frame": lambda: frame(ping)[: rng.randint(1, 5)],
        "bad_close_code": lambda: frame(struct.pack("!H", rng.choice([0, 999, 1004, 1005, 1006, 2999, 5000])), CLOSE),
        "close_bad_utf8": lambda: frame(struct.pack("!H", 1000) + b"\xc3\x28", CLOSE),
        "close_one_byte": lambda: frame(b"\x03", CLOSE),
        "deflate_garbage": lambda: frame(_random_bytes(rng, 1, 64), rsv=4),
        "interleaved_text": lambda: frame(b'{"act', fin=False) + frame(b"x", opcode=TEXT),
        "random_after_upgrade": lambda: _random_bytes(rng),
        "many_frames": lambda: b"".join(frame(ping) for _ in range(rng.randint(2, 40))),
        "binary_junk": lambda: frame(_random_bytes(rng), BINARY),
    }


def hostile_case(rng: random.Random, address: str) -> HostileCase:
    """One hostile connection, drawn from `rng`: a broken handshake, or a valid one with broken frames."""
    reset = rng.random() < 0.3
    key = base64.b64encode(rng.randbytes(16))
    dialect = f"Sec-WebSocket-Protocol: {FULL_PROTOCOL_V1}\r\n" if rng.random() < 0.5 else ""  # else the prototypes'
    upgrade = upgrade_request(address, key=key, extra=dialect)
    deflate = upgrade_request(address, key=key, extra=dialect + "Sec-WebSocket-Extensions: permessage-deflate\r\n")
    handshakes: dict[str, Callable[[], bytes]] = {
        "random_bytes": lambda: _random_bytes(rng, 1, 4096),
        "truncated_request": lambda: upgrade[: rng.randint(1, len(upgrade) - 1)],
        "close_mid_handshake": lambda: upgrade,  # and hang up before the reply
        "huge_header": lambda: upgrade[:-2] + b"X-Pad: " + b"a" * rng.randint(20_000, 70_000) + b"\r\n\r\n",
        "bad_version": lambda: upgrade.replace(b"Version: 13", b"Version: " + str(rng.randint(0, 99)).encode()),
        "no_key": lambda: upgrade.replace(b"Sec-WebSocket-Key", b"X-Key"),
        "upgrade_with_body": lambda: upgrade[:-2] + b"Content-Length: 8\r\n\r\n" + b'{"a":1}\n',
        "chunked_upgrade": lambda: upgrade[:-2] + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
        "http2_preface": lambda: b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _random_bytes(rng, 0, 64),
        "h2c_upgrade": lambda: upgrade.replace(b"Upgrade: websocket", b"Upgrade: h2c").replace(
            b"Connection: Upgrade", b"Connection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAAP__"
        ),
        "bad_request_line": lambda: b"GET /ws HTTP/9.9 extra\r\n\r\n",
        "http_then_junk": lambda: b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nq\r\n",
    }
    frames = _payloads(rng)
    if rng.random() < 0.35:
        kind = rng.choice(sorted(handshakes))
        return HostileCase(kind, handshakes[kind](), b"", reset)
    kind = rng.choice(sorted(frames))
    payload = frames[kind]()
    if rng.random() < 0.4:  # pipelined: the frames ride in the same write as the upgrade request
        return HostileCase(f"pipelined_{kind}", upgrade + payload, b"", reset)
    return HostileCase(kind, deflate if kind == "deflate_garbage" else upgrade, payload, reset)


async def run_hostile(address: str, case: HostileCase) -> None:
    """Send `case` to `address`, listen briefly, hang up. Connection errors are the server's right."""
    host, port = address.split(":")
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    stream = None
    try:
        await sock.connect((host, int(port)))
        stream = trio.SocketStream(sock)
        if case.reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await stream.send_all(case.handshake)
        if case.kind == "close_mid_handshake":
            return
        if case.after_reply:
            reply = b""
            with trio.move_on_after(READ_FOR * 5):
                while b"\r\n\r\n" not in reply and (chunk := await stream.receive_some()):
                    reply += chunk
            await stream.send_all(case.after_reply)
        with trio.move_on_after(READ_FOR):
            while await stream.receive_some():
                pass
    except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        if stream is not None:
            await trio.aclose_forcefully(stream)
        else:
            sock.close()
