"""``python -m gaiasim`` is the ``gaiasim`` command, signal handling included (a venv SUT runs so)."""

from gaiasim.entry import main

main()
