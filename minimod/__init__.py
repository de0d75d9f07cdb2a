"""minimod: a small, from-scratch, educational deep-learning framework on PyTorch tensors."""

__version__ = "0.1.0"
