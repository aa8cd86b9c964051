"""Training: one loop for teachers and distillation, checkpoints, resume."""
