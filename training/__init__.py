"""podium.training."""
