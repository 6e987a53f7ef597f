"""imgforge.data."""
