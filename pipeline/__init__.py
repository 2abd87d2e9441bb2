"""pipeline: the daily pipeline under test, modelled on Gaia's Initial Data Treatment.

It reads TM files and a reference catalogue and writes a run folder; it knows nothing of the simulator.
Modules: ``icd`` (telemetry format), ``schemas`` (output tables), ``ingest``, ``ipd``, ``transits``,
``crossmatch``, ``catalog`` (DuckDB views), ``timescale`` (OBMT -> UTC), ``io`` (all file access), ``run``
(the stages in order).
"""
