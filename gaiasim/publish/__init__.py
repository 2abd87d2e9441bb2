"""A run's science alerts in the formats the community reads: Avro packets (:mod:`gaiasim.publish.avro`, as the
ZTF and Rubin streams) and VOEvent 2.0 XML (:mod:`gaiasim.publish.voevent`, as Gaia Science Alerts), built from the
run contract's tables alone (:mod:`gaiasim.publish.packets`). docs/alerts.md describes both."""
