"""imgforge.methods."""
