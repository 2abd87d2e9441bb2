@e2e @science @REQ-ALR-001 @REQ-ALR-002
Feature: Science alerts are raised for the day's transients and for nothing else
  Supernovae, microlensing events, dwarf novae, young stars and the other alert classes make known sources
  brighten or fade, or appear as sources new to the catalogue. Each one that Gaia sees in both fields of view
  with a change of a magnitude or more (a new source: brighter than G 19) must raise one alert of its kind, and
  nothing else may raise one. A tiny day cannot bound the rate of false alerts (about 700 transits bound it only to
  thousands per 10^6 transits): it must raise none.

  Scenario: every detectable transient seen in both fields of view is alerted, and nothing else is
    Given a tiny day generated with seed 42 and the fault plan "transients"
    When the daily pipeline processes the day
    Then the check "alerts_recall" passes
    And the check "no_false_alerts" measures 0
    And the check "crossmatch_correct" passes
    And the check "transits_complete" passes
