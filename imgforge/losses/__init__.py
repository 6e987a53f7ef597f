"""imgforge.losses."""
