"""Parsers for option syntaxes that are more than one value: ``--frames 5..15``, ``--shard 3/32``, lists.

Kept torch-free (and numpy-free) so that parsing a command line costs nothing; what the values mean is checked
again by the stage that uses them.
"""

from __future__ import annotations

from avkd.core.errors import UsageError

__all__ = ["MAX_CONTEXT", "MIN_CONTEXT", "parse_frames", "split_list"]

#: The shortest and longest context K (``avkd.evaluate.sync.BASE_FRAMES`` and ``MAX_CONTEXT``, tested equal):
#: the sync models take 5-frame windows. Checked before a range is expanded, so ``5..99999999`` costs nothing.
MIN_CONTEXT = 5
MAX_CONTEXT = 201


def split_list(text: str | None) -> list[str] | None:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``; None stays None (the option was not given)."""
    if text is None:
        return None
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_frames(text: str) -> list[int]:
    """Parse a ``--frames`` value into sorted, distinct context lengths K.

    Accepts ``"5..15"`` (odd lengths from 5 to 15: [5, 7, 9, 11, 13, 15]), ``"5..15:4"`` (explicit step:
    [5, 9, 13]), ``"5,9,15"``, ``"7"``, and comma-separated mixtures of these. Every K must be odd and >= 5
    (the model's 5-frame input, §4); ranges need start <= end and a positive step. Anything else raises
    :class:`UsageError` naming the value.
    """

    def fail(reason: str) -> UsageError:
        return UsageError(f"--frames {text!r}: {reason}")

    def integer(s: str) -> int:
        s = s.strip()
        try:
            return int(s)
        except ValueError:
            raise fail(f"{s!r} is not an integer") from None

    if not text or not text.strip():
        raise fail("empty; expected e.g. 5..15, 5..15:4, 5,9,15 or 7")
    ks: list[int] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            raise fail("empty item")
        if ".." in item:
            span, _, step_text = item.partition(":")
            start_text, _, end_text = span.partition("..")
            start, end = integer(start_text), integer(end_text)
            step = integer(step_text) if step_text else 2
            if step <= 0:
                raise fail(f"step must be positive, got {step}")
            if start > end:
                raise fail(f"range start {start} is after its end {end}")
            if end > MAX_CONTEXT:
                raise fail(f"K goes up to {MAX_CONTEXT} frames, got {end}")
            ks.extend(range(start, end + 1, step))
        else:
            ks.append(integer(item))
    for k in ks:
        if k < MIN_CONTEXT or k > MAX_CONTEXT or k % 2 == 0:
            raise fail(
                f"every K must be odd, from {MIN_CONTEXT} (the model sees 5 frames) to {MAX_CONTEXT}, got {k}"
            )
    return sorted(set(ks))
