"""imgforge.training."""
