"""Balance-aware Sequence Sampling (BSS) as drop-in PyTorch samplers."""

__version__ = "0.1.0"
