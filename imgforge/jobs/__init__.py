"""Jobs: one module per command family (stylize, translate, generate, invert/edit). The only layer that resolves
weights, picks precision through :class:`~imgforge.runtime.Runtime`, and reads and writes files; the CLI turns options
into a frozen job config, calls one function here and renders the result."""
