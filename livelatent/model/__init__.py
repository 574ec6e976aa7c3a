"""The model layer: the RawAudioVAE module (``vae``, needs torch), its checkpoints, the
inference codec, training, metrics and model cards.

This package file imports nothing, so importing one of its modules (``livelatent.model.vae``
from :mod:`livelatent.optional`) never drags in the others.
"""
