"""MIA package."""
