"""avkd: audio-visual knowledge distillation toolkit."""

__version__ = "0.1.0"
