"""Offline research: continuous futures series and, later, environments, training and fitting."""
