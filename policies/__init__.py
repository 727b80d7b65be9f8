"""Policies: RL training and evaluation (stable-baselines3) and the robot + big-model planner."""
