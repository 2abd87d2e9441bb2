@e2e @REQ-ING-002 @REQ-ING-003 @REQ-HK-001 @REQ-HK-002 @REQ-ALR-001 @REQ-ALR-002
Feature: The harness catches every fault it injects
  For each fault plan, every injected fault (telemetry, housekeeping, science) must be reported where a
  correct pipeline reports it, and nothing may be reported that no fault explains: the harness tests itself.

  Scenario Outline: a <level> day with the fault plan "<plan>" has a complete detection scorecard
    Given a <level> day generated with seed <seed> and the fault plan "<plan>"
    When the daily pipeline processes the day
    Then the detection scorecard is complete
    And the check "packet_conservation" passes
    And the check "transits_complete" passes

    Examples:
      | level | seed | plan           |
      | tiny  | 3    | corrupted_link |
      | tiny  | 4    | hk_anomalies   |
      | tiny  | 6    | transients     |
      | small | 8    | corrupted_link |
