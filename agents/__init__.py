"""prefgym's agents: one algorithm per module (``agents.phf`` holds the pretraining objectives).

``agents`` imports ``prefgym``; ``prefgym`` never imports ``agents`` (entry points reach
these modules through Hydra ``_target_`` strings).
"""
