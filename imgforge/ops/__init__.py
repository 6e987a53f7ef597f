"""imgforge.ops."""
