"""vidgate: the premium-video gate (domain core and adapters)."""
