"""Published numbers shown beside avkd's runs, never mixed with them: each table marks its rows as published.

Sync: the LRS2 test numbers (1,243 clips, ±1 frame) of docs/reference/vocalist.md §6. Emotion: Table 1 of the
multimodal-to-unimodal attention-distillation paper (CMU-MOSEI unaligned), docs/reference/mult-mosei.md §5.4.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PUBLISHED", "PUBLISHED_EMOTION", "PUBLISHED_TAG"]

#: Reference §6: LRS2 test, 1,243 clips, ±1 frame. ``params`` in millions, ``accuracy`` in **percent** as
#: published (runs carry fractions), keyed by the context length K in frames.
PUBLISHED: list[dict[str, Any]] = [
    {
        "name": "SyncNet",
        "params": 13.6,
        "accuracy": {5: 75.8, 7: 82.3, 9: 87.6, 11: 91.8, 13: 94.5, 15: 96.1},
        "source": "literature row printed by MTDVocaLiST test_stu.py",
    },
    {
        "name": "PM (Perfect Match)",
        "params": 13.6,
        "accuracy": {5: 88.1, 7: 93.8, 9: 96.4, 11: 97.9, 13: 98.7, 15: 99.1},
        "source": "literature row printed by MTDVocaLiST test_stu.py",
    },
    {
        "name": "AVST",
        "params": 42.4,
        "accuracy": {5: 92.0, 7: 95.5, 9: 97.7, 11: 98.8, 13: 99.3, 15: 99.6},
        "source": "literature row printed by MTDVocaLiST test_stu.py",
    },
    {
        "name": "VocaLiST (paper)",
        "params": 80.1,
        "accuracy": {5: 92.8, 7: 96.7, 9: 98.4, 11: 99.3, 13: 99.6, 15: 99.8},
        "source": "VocaLiST paper",
    },
    {
        "name": "VocaLiST (repro)",
        "params": 80.106561,
        "accuracy": {5: 92.44, 7: 96.52, 9: 98.27, 11: 99.13, 13: 99.53, 15: 99.76},
        "source": "MTDVocaLiST pretrained/repro_Vocalist_eval_result.log (2022-12-26)",
    },
    {
        "name": "MTDVocaLiST",
        "params": 13.280961,
        "accuracy": {5: 91.46, 7: 95.74, 9: 97.99, 11: 98.95, 13: 99.46, 15: 99.68},
        "source": "MTDVocaLiST pretrained/pure_MTDVocaLiST_eval_result.log (2024-01-21)",
    },
]

PUBLISHED_TAG = "(published, LRS2)"

#: Seed paper Table 1 (docs/reference/mult-mosei.md §5.4): CMU-MOSEI unaligned, 7-class accuracy % and F1.
PUBLISHED_EMOTION: list[dict[str, Any]] = [
    {"row": "Student without KD", "acc7": 41.296, "f1": 32.142},
    {"row": "Complete teacher (cfg 1, 5)", "acc7": 49.779, "f1": 48.817},
    {"row": "Video-branch teacher (cfg 2)", "acc7": 49.621, "f1": 48.542},
    {"row": "cfg 2: CRD on final linear layer", "acc7": 43.711, "f1": 33.281},
    {"row": "cfg 2: CRD on penultimate linear layer", "acc7": 42.576, "f1": 35.565},
    {"row": "cfg 2: CRD on attention maps", "acc7": 43.837, "f1": 35.912},
    {"row": "cfg 5: CRD on final linear layer", "acc7": 42.731, "f1": 32.513},
    {"row": "cfg 5: CRD on penultimate linear layer", "acc7": 43.732, "f1": 35.632},
    {"row": "cfg 5: CRD on post-attention linear layers", "acc7": 43.837, "f1": 35.711},
    {"row": "cfg 5: CRD on attention maps", "acc7": 44.031, "f1": 36.110},
    {"row": "cfg 5: EDAM-S on attention maps (best)", "acc7": 44.231, "f1": 36.332},
    {"row": "cfg 5: EDAM-T on attention maps", "acc7": 43.993, "f1": 36.189},
]
