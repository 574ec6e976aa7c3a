# Curve composition: a sequence of amounts, chopped into sixteenths, slowly modulated.
tempo(96)
pulse = seq([0, 0.25, 1, 0.5], step=0.5).segment(4)
voice(organ, vibraphone, curve=0.7 * pulse + 0.3 * sine(8), gain=0.8, name="pulse")
voice(kick, timpani, curve=square(1, duty=0.25), gain=0.6, synth="concat", name="thump")
