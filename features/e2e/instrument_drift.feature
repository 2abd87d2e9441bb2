@e2e @REQ-PHOT-001 @REQ-PHOT-003
Feature: A day on which the instrument drifts from its calibration turns validation red
  The pipeline works with the calibration an earlier cycle measured. When the focus drifts, ice builds up
  on the optics or a CCD's gain jumps during the day, its photometry goes wrong, and the operations team
  must see it in the checks, not in next month's science.

  Scenario: focus, contamination and a gain jump on a small day are caught
    Given a small day generated with seed 42 and the fault plan "calibration_drift"
    When the daily pipeline processes the day
    Then the check "photometry_bias" fails
    And the check "ccd_photometry" fails
    And the check "transits_complete" passes
