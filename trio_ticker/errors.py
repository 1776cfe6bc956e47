"""How errors are told in logs, statuses and config messages: the leaves of a (nested) exception
group, and text with any `token=` secret hidden. Every module that reports an error uses these."""

from __future__ import annotations

import re
from typing import TypeVar

E = TypeVar("E", bound=BaseException)

TOKEN_IN_TEXT = re.compile(r"(token=)[^&#\s'\"]*", re.IGNORECASE)
"""`token=<secret>` in a URL, a query string or a quoted repr: the secret ends at `&`, `#`, a space or a quote."""


def redact_token(text: str) -> str:
    """`text` with the value of every `token=` replaced by `***` (an API key in a URL is never logged)."""
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
