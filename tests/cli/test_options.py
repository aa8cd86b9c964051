"""Option syntaxes parsed before any work: ``--frames``."""

from __future__ import annotations

import pytest

from avkd.cli.options import MIN_CONTEXT, parse_frames
from avkd.core.errors import UsageError
from avkd.evaluate.sync import BASE_FRAMES


def test_the_shortest_context_is_the_models_input() -> None:
    # The parser is torch-free, so it keeps its own copy of the constant: they must agree.
    assert MIN_CONTEXT == BASE_FRAMES


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5..15", [5, 7, 9, 11, 13, 15]),
        ("5..15:4", [5, 9, 13]),
        ("5,9,15", [5, 9, 15]),
        ("7", [7]),
        (" 5 .. 9 ", [5, 7, 9]),
        ("15,5,5", [5, 15]),
        ("5..7,11", [5, 7, 11]),
    ],
)
def test_parse_frames_good(text: str, expected: list[int]) -> None:
    assert parse_frames(text) == expected


@pytest.mark.parametrize(
    "text", ["4", "5..4", "6..10", "a..b", "5..15:0", "", "3", "5..15:3", "5,,7", "5..15:-2"]
)
def test_parse_frames_bad(text: str) -> None:
    with pytest.raises(UsageError, match=r"^--frames "):
        parse_frames(text)
