"""The ``mosei-features`` artifact's payload: file names, splits and modalities, and how older schemas differ.

Splits use avkd's one vocabulary (``train``, ``val``, ``test``); the CMU Multimodal SDK's folds and MulT's
pickles call the middle one ``valid`` (:data:`SOURCE_SPLITS`). Schema 1 stored that split's HDF5 group as
``valid`` too; schema 2 (this version) writes ``val`` and reads both (:func:`group_name`).
"""

from __future__ import annotations

from avkd.data.failures import FAILURES
from avkd.data.splits import canonical_split

__all__ = ["FAILURES", "FEATURES", "MODALITIES", "SOURCE_SPLITS", "SPLITS", "group_name"]

FEATURES = "mosei.h5"
SPLITS = ("train", "val", "test")
#: avkd split -> the name the SDK's fold files and MulT's pickles give it.
SOURCE_SPLITS = {"train": "train", "val": "valid", "test": "test"}
MODALITIES = ("text", "audio", "vision")


def group_name(split: str, schema: int) -> str:
    """The HDF5 group holding ``split`` in a ``mosei-features`` artifact of ``schema``."""
    split = canonical_split(split)
    return SOURCE_SPLITS[split] if schema < 2 else split
