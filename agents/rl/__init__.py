"""PPO for the HRM policy: the SB3 algorithm and buffer, the training envs, validation, the comparison."""
