"""podium.studio."""
