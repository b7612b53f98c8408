"""BPTT Explorer: Backpropagation Through Time made visible and checkable."""

__version__ = "0.1.0"
