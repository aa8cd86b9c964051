"""Evaluators: ``sync`` (31-candidate AV-sync retrieval and single-video offsets, reference §4) and ``stage``
(the evaluation artifact)."""
