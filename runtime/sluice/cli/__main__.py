"""``python -m sluice.cli``: the same as the ``sluice`` command."""

from sluice.cli import main

main()
