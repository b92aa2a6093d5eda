"""Count-based N-gram models: vectorised numpy over integer ids, no torch on this path."""
