"""pytest-bdd step definitions: thin glue from Gherkin to one gaiasim call each."""
