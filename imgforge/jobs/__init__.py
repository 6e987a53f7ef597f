"""Jobs: the library side of the CLI commands (config in, results out, a progress callback, no UI)."""
