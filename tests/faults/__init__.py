"""Fault tests: outages, throttling, a missing JWKS or signing key; the product fails closed."""
