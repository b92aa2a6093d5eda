"""lmbench: language-model families compared under one evaluation protocol."""

__version__ = "0.1.0"
