"""prefgym's agents: one algorithm per module.

``ppo``, ``grpo``, ``rloo``, ``reinforce``, ``best_of_n``, ``random_baseline`` (RL and
baselines), ``dpo`` (preference pairs) and ``phf`` (pretraining objectives); ``functional``
holds their shared math. ``agents`` imports ``prefgym``; ``prefgym`` never imports
``agents`` (the trainer reaches these modules through Hydra ``_target_`` strings).

Importing this package is cheap: the algorithm modules load torch when imported themselves.
"""

# The trainer checks this marker: the import name ``agents`` is generic (an unrelated PyPI
# package and a popular SDK use it too), and a clash must fail with a clear message.
PREFGYM_AGENTS = True
