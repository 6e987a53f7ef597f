"""imgforge.cli."""
