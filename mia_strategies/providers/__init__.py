"""Signal providers backed by trained RL policies and the Bayesian ensemble (numpy only, no torch)."""
