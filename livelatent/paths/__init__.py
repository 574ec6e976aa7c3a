"""Latent paths: what a voice plays window by window, and the tools to find places in the space."""
