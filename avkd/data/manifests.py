"""Where the shipped corpus manifests live: the official LRS2 split lists and the CMU-MOSEI standard folds."""

from __future__ import annotations

from pathlib import Path

from avkd.core.errors import AvkdError


def manifest_dir() -> Path:
    """``data_manifests/``: inside the installed package (wheel) or beside it (source checkout)."""
    package = Path(__file__).resolve().parents[1]  # avkd/
    for candidate in (package / "data_manifests", package.parent / "data_manifests"):
        if candidate.is_dir():
            return candidate
    raise AvkdError(f"data_manifests not found next to {package}; reinstall avkd")
