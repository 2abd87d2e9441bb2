@e2e @REQ-E2E-001 @REQ-E2E-004 @REQ-ING-003
Feature: Consecutive days run on as one mission
  Telemetry does not stop at midnight: the tail of a day arrives in the next day's first pass, and the
  packet counters run on. Several days processed together lose nothing at the day boundaries.

  Scenario: two consecutive days come out complete, with no gap at the day boundary
    Given 2 consecutive tiny days generated with seed 42
    When the daily pipeline processes the day
    Then the check "transits_complete" passes
    And the check "no_false_alarms" passes
    And the check "packet_conservation" passes

  @slow
  Scenario: a medium day comes out complete and accurate
    Given a medium day generated with seed 42
    When the daily pipeline processes the day
    Then the check "transits_complete" passes
    And the check "centroid_pull_bias" passes
    And the check "centroid_pull_width" passes
    And the check "crossmatch_correct" passes
