"""Models, found by name: ``build_model("vocalist", width=200)``, ``list_models("voca*")``.

Importing this package registers the built-in families (one module per family, see DESIGN.md). A family
module that is not present yet is skipped; one that is present but fails to import raises.
"""

from __future__ import annotations

import importlib
import importlib.util

from avkd.models.attention import Tapped, TapRequest, flat_heads, unflat_heads
from avkd.models.registry import build_model, is_model, list_models, model_entrypoint, register_model

__all__ = [
    "TapRequest",
    "Tapped",
    "build_model",
    "flat_heads",
    "is_model",
    "list_models",
    "model_entrypoint",
    "register_model",
    "unflat_heads",
]

#: Built-in model families; each registers its entrypoints on import.
FAMILIES: tuple[str, ...] = ("vocalist", "syncnet", "avsiam", "mult")

for _family in FAMILIES:
    if importlib.util.find_spec(f"{__name__}.{_family}") is not None:
        importlib.import_module(f"{__name__}.{_family}")
