"""Which client dialect a `/ws` handshake selects, sans I/O: the prototypes' dialect or the full protocol.

A plain `new WebSocket(url)` speaks the prototypes' dialect; the versioned subprotocol `trio-ticker.v1`, or
`?batch=1`, selects the full protocol. docs/protocol.md ("Two dialects") is the contract.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass


class Dialect(enum.Enum):
    PROTOTYPE = "prototype"
    FULL = "full"


FULL_PROTOCOL_V1 = "trio-ticker.v1"
FULL_PROTOCOL_SUBPROTOCOLS = (FULL_PROTOCOL_V1, "trio-ticker")
"""The subprotocols that select the full protocol, in the server's order of preference. The unversioned name
means v1 for the clients that already send it; an incompatible protocol will get a name of its own."""


@dataclass(frozen=True, slots=True)
class Negotiated:
    dialect: Dialect
    subprotocol: str | None  # what the handshake response selects
    batch: bool


def negotiate(offered: Sequence[str], *, batch: bool) -> Negotiated | None:
    """The dialect for a client that offered `offered` subprotocols and asked for `?batch=1` or not.

    None when it offered subprotocols but none this server speaks (a `bearer.` token is no dialect): the
    handshake then selects none, which a browser must treat as a failed connection, and the server closes
    rather than guess a dialect.
    """
    for name in FULL_PROTOCOL_SUBPROTOCOLS:
        if name in offered:
            return Negotiated(Dialect.FULL, name, batch)
    if offered:
        return None
    if batch:
        return Negotiated(Dialect.FULL, None, True)
    return Negotiated(Dialect.PROTOTYPE, None, False)
