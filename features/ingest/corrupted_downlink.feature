@e2e @ingest @REQ-ING-001 @REQ-ING-002 @REQ-ING-003
Feature: A day with a bad downlink loses nothing silently
  Packets lost on the link, corrupted by bit flips, received twice, or cut off at the end of a pass
  must each be reported (sequence gap, quarantine with a reason, dropped duplicate), and nothing else.

  Scenario: every fault of a corrupted downlink is reported and nothing else is
    Given a tiny day generated with seed 7 and the fault plan "corrupted_link"
    When the daily pipeline processes the day
    Then the check "faults_detected" passes
    And the check "no_false_alarms" passes
    And the check "packet_conservation" passes
    And the check "transits_complete" passes
