"""The ``--layers`` grammar (``avkd.losses.layers``): VocaLiST's distillable (block, layer) pairs."""

from __future__ import annotations

import pytest

from avkd.core.errors import UsageError
from avkd.losses import build_loss, parse_layers


def test_parse_layers_good() -> None:
    assert len(parse_layers("all")) == 12
    assert parse_layers("all")[:5] == [("mem", 1), ("mem", 2), ("mem", 3), ("mem", 4), ("av", 1)]
    assert parse_layers("fusion4") == parse_layers("fus4") == parse_layers("mem4") == [("mem", 4)]
    assert parse_layers("av1-4,fusion1-4") == [("mem", i) for i in range(1, 5)] + [
        ("av", i) for i in range(1, 5)
    ]
    assert parse_layers("va1,av4,fus3") == [("mem", 3), ("av", 4), ("va", 1)]  # canonical order
    assert parse_layers(" AV2 , av2,av1-2 ") == [("av", 1), ("av", 2)]
    assert parse_layers("va") == [("va", i) for i in range(1, 5)]
    assert parse_layers([("fusion", 2), "va3"]) == [("mem", 2), ("va", 3)]


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("av5", "'av5'"),
        ("xx1", "'xx1'"),
        ("av3-1", "'av3-1'"),
        ("av1,,va2", "''"),
        ("av0", "'av0'"),
        ("fus4x", "'fus4x'"),
    ],
)
def test_parse_layers_bad(text: str, bad: str) -> None:
    with pytest.raises(UsageError, match=f"bad layer selection {bad}"):
        parse_layers(text)
    with pytest.raises(UsageError):
        build_loss("mtd", layers=text)
