"""Models, found by name: ``build_model("vocalist", width=200)``, ``list_models("voca*")``.

One module per family; importing this package registers the built-in families (``vocalist``, ``mult``). A new
family is one module that registers its entrypoints, imported below (docs/architecture.md, "Adding a model").
"""

from __future__ import annotations

from avkd.models import avsiam, avsiam_emotion, avsiam_sync, mult, syncnet, vocalist  # noqa: F401  (registration)
from avkd.models.attention import Tapped, TapRequest, flat_heads, unflat_heads
from avkd.models.registry import MODELS, build_model, is_model, list_models, model_entrypoint, register_model

__all__ = [
    "MODELS",
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
