@e2e @REQ-E2E-003
Feature: A day and its processing are reproducible bit for bit
  Rehearsals are only worth repeating when the same spec gives the same telemetry and the same pipeline
  gives the same outputs: a difference then means a change, never chance.

  Scenario: the same spec gives the same bytes, and the pipeline the same outputs
    Given a tiny day generated with seed 42 and the fault plan "corrupted_link"
    When the day is generated again from the same spec
    Then every file of the dataset has the same SHA-256
    When the daily pipeline processes the day
    And the daily pipeline processes the day again
    Then every output table has the same bytes
