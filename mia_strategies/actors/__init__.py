"""Actors that run inside the nautilus kernel and publish facts: features, regimes, risk."""
