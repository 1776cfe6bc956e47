"""Error reporting helpers: token redaction and the leaves of nested exception groups."""

from __future__ import annotations

from trio_ticker.errors import leaves, redact_tokens


def test_a_token_in_a_url_is_redacted_and_the_rest_kept() -> None:
    assert redact_tokens("wss://ws.finnhub.io?token=sekrit&x=1") == "wss://ws.finnhub.io?token=***&x=1"
    assert redact_tokens("TOKEN=a#frag and token=b c") == "TOKEN=***#frag and token=*** c"


def test_a_token_in_a_quoted_repr_stops_at_the_quote() -> None:
    assert redact_tokens("ConnectError('wss://x?token=sekrit')") == "ConnectError('wss://x?token=***')"
    assert redact_tokens('(got "http://x?token=sekrit")') == '(got "http://x?token=***")'


def test_leaves_are_every_non_group_exception_depth_first() -> None:
    first, second, third = ValueError("a"), KeyError("b"), OSError("c")
    group = ExceptionGroup("outer", [ExceptionGroup("inner", [first, second]), third])
    assert leaves(group) == [first, second, third]
