"""gaiasim: simulation and validation harness for a Gaia-like daily telemetry pipeline.

Subpackages: ``gaiasim.sim`` (the simulator), ``gaiasim.validate`` (checks against truth); modules
``spec`` (dataset specs), ``dataset`` (dataset folders), ``workspace`` (cached datasets and runs),
``demo`` and ``cli`` (the ``gaiasim`` command). The system under test is the ``pipeline`` package.
"""
