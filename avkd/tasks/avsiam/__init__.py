"""The avsiam task (alias ``clips``, :mod:`.task`): AVSiam's self-supervised pre-training (:mod:`.pretrain`),
fine-tuning with mixed modalities (:mod:`.finetune`), the clips evaluation and report, and the demo (:mod:`.demo`).
"""
