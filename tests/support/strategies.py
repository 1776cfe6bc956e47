"""Hypothesis strategies shared by the property tests: arbitrary frames and JSON-shaped values."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import strategies as st

# orjson reads integers up to 64 bits; the JSON values a peer can send are these.
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)


def objects_with(
    keys: dict[str, st.SearchStrategy[Any]], required: dict[str, st.SearchStrategy[Any]] | None = None
) -> st.SearchStrategy[bytes]:
    """JSON objects whose given keys (`required` always, `keys` maybe) hold plausible or arbitrary values."""
    optional = {key: strategy | json_values for key, strategy in keys.items()}
    return st.fixed_dictionaries(required or {}, optional=optional).flatmap(
        lambda fixed: st.dictionaries(st.text(max_size=8), json_values, max_size=3).map(
            lambda extra: orjson.dumps({**extra, **fixed})
        )
    )


frames = st.text() | st.binary() | json_values.map(orjson.dumps)
