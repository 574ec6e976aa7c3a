# Stepwise interpolation (Algorithm 1): one whole pass over piano and marimba per step,
# the amount held for the pass: 0, 0.25, 0.5, 0.75, 1, then again. Concatenated windows
# keep the paper's raw 43 Hz texture.
voice(piano, marimba, strategy="stepwise", steps=(0, 1, 0.25), synth="concat", name="walk",
      pan=-0.3)
