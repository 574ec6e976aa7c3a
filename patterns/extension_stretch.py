# Extension (Algorithm 3): frames read at a quarter of the output hop, so the choir and the
# strings play four times longer; the amount sweeps with a triangle and a touch of noise.
voice(choir, strings, strategy="extension", stretch=4,
      curve=(tri(32) + 0.1 * noise(7, period=2)).clip(0, 1), name="stretch", pan=0.3)
