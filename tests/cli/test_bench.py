"""``avkd bench``'s command: its help starts without torch, like every command that needs no model."""

from __future__ import annotations

from tests.cli.test_startup import probe


def test_bench_help_does_not_import_torch() -> None:
    (record,), stdout, _ = probe(["bench", "--help"])
    assert record["code"] == 0 and not record["torch"], record
    assert "--threads" in stdout and "--repeats" in stdout and "MODEL_OR_EXPORT" in stdout
