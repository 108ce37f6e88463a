"""RL training for MIA's signal providers: SAC, PPO, DDPG, QR-DQN, PPO-Lagrangian, ensembles, registry.

Modules import torch and stable-baselines3 lazily where they can, so ``research.rl.config`` stays
cheap enough for the CLI to load at start-up.
"""
