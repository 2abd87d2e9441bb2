@e2e @science @REQ-ALR-001 @REQ-ALR-002
Feature: Science alerts are raised for the day's transients and for nothing else
  Known sources that brighten or fade by a magnitude or more, and sources new to the catalogue, must each
  raise one alert once Gaia has seen them in both fields of view, and nothing else may raise one.

  Scenario: every transient seen in both fields of view is alerted, and nothing else is
    Given a tiny day generated with seed 42 and the fault plan "transients"
    When the daily pipeline processes the day
    Then the check "alerts_recall" passes
    And the check "no_false_alerts" passes
    And the check "crossmatch_correct" passes
    And the check "transits_complete" passes
