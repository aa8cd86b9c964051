"""AVSiam's stages: self-supervised pre-training on a ``clips-features`` artifact (:mod:`.pretrain`).

Not a registered :class:`~avkd.tasks.base.Task` yet: the task contract asks for train, distill, evaluate, report and
demo stages, and only pre-training exists so far.
"""
