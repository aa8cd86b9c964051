"""``avkd export``'s command: its help starts without torch, like every command that needs no model."""

from __future__ import annotations

from tests.cli.test_startup import probe


def test_export_help_does_not_import_torch() -> None:
    (record,), stdout, _ = probe(["export", "--help"])
    assert record["code"] == 0 and not record["torch"], record
    assert "--format" in stdout and "--data" in stdout and "--atol" in stdout
