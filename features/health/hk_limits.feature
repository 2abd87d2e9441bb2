@e2e @health @REQ-HK-001 @REQ-HK-002
Feature: Payload health is watched on every housekeeping channel
  The operations team needs every housekeeping channel that leaves its limits (a yellow warning or a red
  critical) or freezes on one value to be reported once, over the right samples, and no alarm otherwise.

  Scenario: every injected limit violation and stale channel is reported, and nothing else
    Given a tiny day generated with seed 5 and the fault plan "hk_anomalies"
    When the daily pipeline processes the day
    Then the check "hk_anomalies_reported" passes
    And the check "no_spurious_hk_events" passes
    And the check "packet_conservation" passes

  Scenario: a nominal day raises no housekeeping alarm
    Given a tiny day generated with seed 42
    When the daily pipeline processes the day
    Then the check "no_spurious_hk_events" passes
