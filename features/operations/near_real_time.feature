@rehearsal @REQ-OPS-001 @REQ-OPS-002
Feature: Pass files are processed as they arrive
  In operations the daily pipeline does not wait for the day to end: each ground-station pass file is
  processed as soon as it lands in the inbox, and its outputs, with any science alert it completes,
  follow within a minute. File by file, the outputs must end up the same as a run over the whole day.

  Scenario: a day processed file by file while its passes are replayed
    Given a tiny day generated with seed 42 and the fault plan "transients"
    When the daily pipeline processes the day
    And the day's pass files are replayed at 20000 times real time into an inbox the pipeline watches
    And the candidate's outputs are compared with the operational baseline
    Then no output table differs beyond tolerance
    And the check "file_latency" passes on the watched run
    And the check "alert_latency" passes on the watched run
