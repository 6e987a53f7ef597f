"""imgforge.hub."""
