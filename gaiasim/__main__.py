"""``python -m gaiasim`` is the ``gaiasim`` command."""

from gaiasim.cli import main

main()
