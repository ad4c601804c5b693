"""The HTTP route definitions, driven with API Gateway v2 events (no server)."""
