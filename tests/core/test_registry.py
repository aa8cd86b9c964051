"""avkd.core.registry.Registry on hand-made entries: registering, aliases, lookup, argument checks, order."""

from __future__ import annotations

import pytest

from avkd.core.errors import UsageError
from avkd.core.registry import Registry


def small(width: int = 8, *, depth: int = 1) -> tuple[int, int]:
    return (width, depth)


def large(width: int = 512) -> tuple[int, int]:
    return (width, 4)


def test_register_bare_and_with_name_and_aliases() -> None:
    things: Registry = Registry("thing")
    assert things.register(small) is small  # bare: registered under its __name__, returned unchanged
    decorated = things.register(name="big", aliases=("huge", "xl"))(large)
    assert decorated is large
    assert things.names() == ["small", "big"]  # aliases are not names
    assert things.aliases() == {"huge": "big", "xl": "big"}
    assert things.get("small") is small and things.get("big") is large
    assert things.canonical("xl") == "big" and things.canonical("big") == "big"
    assert things.get("huge") is large
    assert things.build("xl", width=3) == (3, 4)
    assert things.build("small", 2, depth=5) == (2, 5)


def test_contains_sees_names_and_aliases_only() -> None:
    things: Registry = Registry("thing")
    things.register(large, name="big", aliases=("xl",))
    assert "big" in things and "xl" in things
    assert "large" not in things  # the function's own name is not registered when a name is given
    assert "Big" not in things and 3 not in things


def test_unknown_name_lists_the_known_ones() -> None:
    things: Registry = Registry("thing")
    with pytest.raises(UsageError, match=r"^unknown thing 'small'; known: \(none\)$"):
        things.get("small")
    things.register(small)
    things.register(large, name="big", aliases=("xl",))
    with pytest.raises(UsageError, match=r"^unknown thing 'smal'; known: small, big$"):
        things.canonical("smal")
    with pytest.raises(UsageError, match="unknown thing 'x'"):
        things.build("x")


def test_reregistering_the_same_function_is_allowed() -> None:
    things: Registry = Registry("thing")
    things.register(small)
    things.register(small)  # a module reload registers the same entrypoint again
    things.register(small, name="tiny")
    things.register(small, name="tiny", aliases=("t",))
    assert things.names() == ["small", "tiny"] and len(things) == 2
    assert things.canonical("t") == "tiny"


def test_another_entry_under_a_taken_name_raises() -> None:
    things: Registry = Registry("thing")
    things.register(small, name="model")
    with pytest.raises(ValueError, match=r"thing name 'model' is already registered by .*\.small"):
        things.register(large, name="model")
    assert things.get("model") is small  # the first registration stands


def test_a_taken_alias_raises() -> None:
    things: Registry = Registry("thing")
    things.register(small, aliases=("s",))
    with pytest.raises(ValueError, match="thing alias 's' is already taken"):
        things.register(large, aliases=("s",))
    with pytest.raises(ValueError, match="thing alias 'small' is already taken"):
        things.register(large, aliases=("small",))  # an alias may not shadow a name either
    assert things.canonical("s") == "small"


def test_a_name_that_is_already_an_alias_raises() -> None:
    things: Registry = Registry("thing")
    things.register(small, aliases=("big",))
    with pytest.raises(ValueError, match="'big'"):
        things.register(large, name="big")


def test_check_arguments_names_the_accepted_parameters() -> None:
    things: Registry = Registry("thing")
    things.register(small, aliases=("s",))
    assert things.check_arguments("small", 3, depth=2) is small
    with pytest.raises(
        UsageError,
        match=r"^bad arguments for thing 'small': .*'widht'.* \(it takes width, depth\)$",
    ):
        things.check_arguments("s", widht=3)  # the message names the canonical entry, not the alias
    with pytest.raises(UsageError, match=r"\(it takes width, depth\)"):
        things.build("small", 1, 2)  # depth is keyword-only

    def bare() -> None:
        return None

    things.register(bare)
    with pytest.raises(UsageError, match=r"\(it takes no arguments\)"):
        things.build("bare", 1)


def test_check_arguments_runs_before_the_entry() -> None:
    """A TypeError raised inside an entrypoint is not turned into a usage error: only the signature is checked."""
    things: Registry = Registry("thing")
    calls: list[int] = []

    def broken(width: int = 1) -> None:
        calls.append(width)
        raise TypeError("a bug inside the entrypoint")

    things.register(broken)
    with pytest.raises(UsageError):
        things.build("broken", height=1)
    assert calls == []  # refused before the call
    with pytest.raises(TypeError, match="a bug inside"):
        things.build("broken", width=2)
    assert calls == [2]


def test_classes_are_entrypoints_too() -> None:
    class Box:
        def __init__(self, size: int = 1) -> None:
            self.size = size

    things: Registry = Registry("thing")
    things.register(Box, name="box")
    assert things.build("box", size=4).size == 4
    with pytest.raises(UsageError, match=r"\(it takes size\)"):  # self is not a parameter
        things.build("box", sise=4)


def test_register_object() -> None:
    things: Registry = Registry("thing")
    config = {"k": 1}
    assert things.register_object("cfg", config, aliases=("c",)) is config
    assert things.get("c") is config and things.names() == ["cfg"]
    with pytest.raises(ValueError, match="thing alias 'c' is already taken"):
        things.register_object("other", [1], aliases=("c",))


def test_another_object_under_a_taken_name_raises() -> None:
    things: Registry = Registry("thing")
    things.register_object("cfg", {"k": 1})
    with pytest.raises(ValueError, match="already registered"):
        things.register_object("cfg", {"k": 2})


def test_iteration_order_len_and_patterns() -> None:
    things: Registry = Registry("thing")
    assert len(things) == 0 and list(things) == []
    things.register(large, name="b_large")
    things.register(small, name="a_small", aliases=("z",))
    things.register_object("b_obj", object())
    assert list(things) == ["b_large", "a_small", "b_obj"]  # registration order, not sorted
    assert len(things) == 3  # aliases are not counted
    assert things.names("b_*") == ["b_large", "b_obj"]
    assert things.names("B_*") == []  # case-sensitive
    names = iter(things)
    things.register(small, name="later")
    assert list(names) == ["b_large", "a_small", "b_obj"]  # iterating a snapshot
