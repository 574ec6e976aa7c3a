"""Learned mappings: a few inputs to places in the latent space, taught by example
(:mod:`.mapping`), fitted by small regressions (:mod:`.models`) and played as a latent path
(:mod:`.node`)."""
