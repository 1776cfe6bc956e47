"""How errors are told in logs, statuses and config messages: the leaves of a (nested) exception
group, and text with every secret hidden. Every module that reports an error, and the log filter, use these."""

from __future__ import annotations

import re
from typing import TypeVar

E = TypeVar("E", bound=BaseException)

TOKEN_IN_TEXT = re.compile(r"(token=|\bbearer[ .])[^&#,\s'\"]*", re.IGNORECASE)
"""A secret in text: a `token=` parameter (ours, Finnhub's), a `Bearer` header value, a `bearer.` subprotocol;
it ends at `&`, `#`, `,`, a space or a quote (so a quoted repr keeps its closing quote)."""


def redact_tokens(text: str) -> str:
    """`text` with the value of every TOKEN_IN_TEXT match replaced by `***`."""
    return TOKEN_IN_TEXT.sub(r"\1***", text)


def leaves(group: BaseExceptionGroup[E]) -> list[E]:
    """The exceptions of a (nested) exception group that are not groups themselves, depth first."""
    found: list[E] = []
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            found.extend(leaves(error))
        else:
            found.append(error)
    return found
