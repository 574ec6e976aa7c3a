# The demo: three layers on the default model pack, one per strategy.
voice(flute, cello, strategy="meso", curve=sine(8).range(0.1, 0.9), gain=0.6, pan=-0.4,
      name="drift")
voice(choir, strings, strategy="extension", stretch=4, curve=tri(16), gain=0.5, pan=0.4,
      name="stretch")
voice(marimba, glockenspiel, strategy="stepwise", steps=(0, 1, 0.25), synth="concat", gain=0.35,
      name="walk")
