@e2e @REQ-E2E-003
Feature: A candidate build is compared with the operational baseline
  Before a new pipeline build goes into operations, the team runs it over a day the operational build
  has already processed and compares the two runs table by table: any transit, CCD image, alert or
  housekeeping event that appears, disappears or moves beyond tolerance must be explained.

  Scenario: candidate build vs operational baseline
    Given a tiny day generated with seed 42
    When the daily pipeline processes the day
    And a candidate build of the pipeline processes the same day
    And the candidate's outputs are compared with the operational baseline
    Then no output table differs beyond tolerance
