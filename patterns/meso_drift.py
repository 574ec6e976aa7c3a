# Meso-scale interpolation (the paper's Algorithm 2): a flute drifts into a cello and back,
# the amount following a slow sine window by window, never quite reaching either end.
voice(flute, cello, strategy="meso", curve=sine(16).range(0.1, 0.9), name="drift")
