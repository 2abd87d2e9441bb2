"""The simulated instrument: what the spacecraft really is, written from published Gaia values.

The system under test has its own idea of the instrument (its calibration database); the two share only
the contract (the ICD, the table schemas). Each side takes its values from the published sources
(docs/instrument.md lists them) and tests pin both sides to those literal values
(tests/unit/test_instrument_values.py): they agree because both are right, not because they share code, so
a wrong constant on one side shows in validation.

- :mod:`.focal_plane`: scan rate, basic angle, pixel scales, TDI period, CCD rows and strips, the
  field-angle frames and the across-scan pixel grid;
- :mod:`.electronics`: the true gains, bias, read noise, LSF and photometric zero points.
"""
