"""Collect every Gherkin feature under features/ (steps live in steps/, registered in conftest.py)."""

from pytest_bdd import scenarios

scenarios(".")
