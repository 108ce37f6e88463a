"""MIA strategies: the shared base class (rolls, brackets, session closes) and the strategies on it."""
