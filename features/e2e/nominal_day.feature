@e2e @REQ-E2E-001 @REQ-E2E-002 @REQ-ING-001
Feature: A nominal day comes out of the daily pipeline complete and accurate
  The operations team needs every star transit the spacecraft observed in a day to come out of the
  daily pipeline exactly once, with honest centroids and photometry, so nothing of the day is lost.

  Scenario Outline: every transit of a <level> day comes out exactly once
    Given a <level> day generated with seed <seed>
    When the daily pipeline processes the day
    Then the check "transits_complete" passes
    And the check "no_spurious_transits" passes
    And the check "packet_conservation" passes

    Examples:
      | level | seed |
      | tiny  | 42   |
      | tiny  | 43   |

  @REQ-IPD-001 @REQ-IPD-002 @REQ-IPD-003 @REQ-IPD-004 @REQ-IPD-005 @REQ-IPD-006 @REQ-IPD-007 @REQ-XM-001
  @REQ-PHOT-001 @REQ-PHOT-003
  Scenario: a small day's centroids, cosmic rays, matches and magnitudes agree with what was simulated
    Given a small day generated with seed 42
    When the daily pipeline processes the day
    Then the check "centroid_pull_bias" passes
    And the check "centroid_pull_width" passes
    And the check "centroid_ac_pulls" passes
    And the check "ccd_times" passes
    And the check "fit_noise_model" passes
    And the check "cosmics_flagged" passes
    And the check "cosmics_not_invented" passes
    And the check "crossmatch_correct" passes
    And the check "photometry_bias" passes
    And the check "ccd_photometry" passes
