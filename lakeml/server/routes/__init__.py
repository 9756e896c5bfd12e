"""Small routers of ``lakeml server`` (health, metrics, SQL...); larger APIs have packages of their own."""
