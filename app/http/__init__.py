"""The framework-free HTTP API: router, viewer API, admin API (no Flask, no local stack)."""
