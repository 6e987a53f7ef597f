"""imgforge.models."""
