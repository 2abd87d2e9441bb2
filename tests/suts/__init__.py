"""Command SUTs for the tests: an honest one that wraps the builtin pipeline, and broken ones that each
carry one realistic bug, which validation must catch with the right requirement ids
(tests/unit/test_suts.py). Each is ``python tests/suts/<name>.py DATASET OUT``."""
