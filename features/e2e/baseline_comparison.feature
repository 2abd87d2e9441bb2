@e2e @REQ-E2E-003
Feature: A candidate build is compared with the operational baseline
  Before a new pipeline build goes into operations, the team runs it over a day the operational build
  has already processed and compares the two runs table by table: any transit, CCD image, alert or
  housekeeping event that appears, disappears or moves beyond tolerance must be explained. The two are
  different systems: the candidate is the system under test (pytest --sut), the baseline the operational
  release (pytest --baseline-sut, e.g. venv:gaiasim==0.1.0).

  Scenario: candidate build vs operational baseline
    Given a tiny day generated with seed 42
    When the operational baseline processes the day
    And the system under test processes the same day
    And the candidate's outputs are compared with the operational baseline
    Then no output table differs beyond tolerance
