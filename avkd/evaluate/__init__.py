"""Evaluators: ``sync`` (31-candidate AV-sync retrieval and single-video offsets, docs/reference/vocalist.md §4) and ``stage``
(the evaluation artifact)."""
