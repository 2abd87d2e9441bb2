"""Root conftest: registers the pytest-bdd step modules for the features."""

pytest_plugins = ["steps.common", "steps.compare", "steps.operations"]
