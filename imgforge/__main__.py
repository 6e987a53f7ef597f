"""``python -m imgforge`` (also what ``torchrun -m imgforge`` runs)."""

from .cli.app import main

main()
