"""The latent point of every (voice, window) pair of a span, for all voices at once.

A voice's point is a weighted sum of its latent series' frames (:mod:`livelatent.paths.plan`):
one gather per term for every voice that has it, weighted by that term's channel. A cloud's
grains then move each grain's point by its spread. ``t`` is the bank's voice table, ``v`` the
table row of each pair, ``channels`` each pair's row of channels.
"""

from __future__ import annotations

import numpy as np

__all__ = ["latent_points", "spread_grains", "decoded_points", "LATENT_LIMIT", "FAR"]

# Farther from the origin than this, a latent point is held at this distance on each axis. A
# model's points lie within a few units of it (its latent space is pulled towards a standard
# normal); an amount far outside 0..1 extrapolates points outward, and its noise's deviation,
# the exponential of an extrapolated log-variance, overflows to infinity, which the decoder
# turns into NaN samples that would silence every voice of the mix. Held at 1e6, a point
# decodes to finite (saturated) samples with any weights of sane size (its hidden units stay
# far below float32's range), and nothing a curve within 0..1 plays comes near it.
LATENT_LIMIT = 1e6
# Beyond this on some axis a point is far out: what its samples are depends on how the decoder's
# products round, which differs with the batch a window is decoded in (live a step's windows,
# a render a span's), by more than elsewhere (1e-2 at the edge against 1e-6). Such windows are
# decoded one at a time, so a set renders what was heard. No window within 0..1 gets near it.
FAR = 100.0


def latent_points(t, v, frame, channels) -> tuple[np.ndarray, np.ndarray]:
    """``(z, log_std)``, each (m, latent): each window's weighted sum of its latent series'
    frames, means and log standard deviations (see :mod:`.frames`), one gather per term and plane
    for all the voices that have it. A voice with many one-frame terms (a mapping's rows) mixes
    those in one product of its weights and rows."""
    planes = t.arena                                  # (2, rows, latent): means, log deviations
    grouped = t.grouped
    mixed = [np.zeros((v.size, planes.shape[2]), dtype=np.float32) for _ in planes] if grouped \
        else [None, None]
    for j in range(t.terms):
        has = t.term_count[v] > j
        if grouped:
            has &= ~t.one_frame[v, j]
        if not has.any():
            continue
        rows = None if bool(has.all()) else np.flatnonzero(has)
        vj = v if rows is None else v[rows]
        length = t.term_length[vj, j]
        index = (frame if rows is None else frame[rows]) % length
        chans = channels if rows is None else channels[rows]
        if t.indexed:
            column = t.term_column[vj, j]
            given = column >= 0
            if given.any():
                picked = chans[np.arange(vj.size), np.maximum(column, 0)].astype(np.int64)
                index = np.where(given, np.clip(picked, 0, length - 1), index)
        at = t.term_offset[vj, j] + index
        weight = chans[:, j][:, None]
        for plane, part in enumerate(planes):
            gathered = part.take(at, axis=0)               # a copy: weighted in place
            gathered *= weight
            if mixed[plane] is None:
                mixed[plane] = gathered
            elif rows is None:
                mixed[plane] += gathered
            else:
                mixed[plane][rows] += gathered
    if grouped:       # (not np.unique: its first call imports numpy.ma, tens of ms on this thread)
        for voice in np.flatnonzero(np.bincount(v[t.one_frame[v].any(axis=1)])):
            rows = np.flatnonzero(v == voice)
            terms = np.flatnonzero(t.one_frame[voice])
            weights = channels[rows][:, terms]
            for plane, part in enumerate(planes):
                mixed[plane][rows] += weights @ part[t.term_offset[voice, terms]]
    return tuple(np.zeros((v.size, planes.shape[2]), dtype=np.float32) if m is None else m
                 for m in mixed)


def spread_grains(t, v, channels, z, log_std, sampled, noise, at):
    """A cloud's grains: each drawn ``spread`` standard deviations of its path's frames
    around its point (with the voice's own sampling noise, when it samples, in one draw:
    the variances add). Returns which other windows still sample the usual way."""
    column = t.spread_column[v]
    cloud = np.flatnonzero(column >= 0)
    if cloud.size == 0:
        return sampled
    spread = channels[cloud, column[cloud]][:, None] * t.spread_std[v[cloud]]
    variance = spread * spread
    own = sampled[cloud]
    variance[own] += np.exp(2 * log_std[cloud[own]])          # (doubling is exact)
    z[cloud] += np.sqrt(variance) * noise[at[cloud]]
    rest = sampled.copy()
    rest[cloud] = False
    return rest


def decoded_points(t, v, frame, channels, noise, at):
    """The latent point each window decodes: the weighted mix of :func:`latent_points`, moved by
    its noise (standard deviation ``exp(log_std)``, the noise row ``noise[at]``) unless the
    voice is deterministic, and by a cloud's spread. Returns ``(z, far, held)``: ``far`` marks
    the windows whose point is beyond :data:`FAR` on some axis, ``held`` those whose point was
    beyond :data:`LATENT_LIMIT` (or not a number) and was held at it; None when there are none."""
    with np.errstate(over="ignore", invalid="ignore"):     # (handled below, once per voice)
        z, log_std = latent_points(t, v, frame, channels)
        sampled = ~t.deterministic[v]
        if t.clouds:
            sampled = spread_grains(t, v, channels, z, log_std, sampled, noise, at)
        if sampled.all():
            np.exp(log_std, out=log_std)
            log_std *= noise.take(at, axis=0)
            z += log_std
        elif sampled.any():
            z[sampled] += np.exp(log_std[sampled]) * noise.take(at[sampled], axis=0)
    if not z.size or (z.max() <= FAR and z.min() >= -FAR):           # (NaN fails both)
        return z, None, None
    reach = np.abs(z).max(axis=1)
    far, held = ~(reach <= FAR), ~(reach <= LATENT_LIMIT)
    if held.any():
        np.nan_to_num(z, copy=False, nan=0.0, posinf=LATENT_LIMIT, neginf=-LATENT_LIMIT)
        np.clip(z, -LATENT_LIMIT, LATENT_LIMIT, out=z)
    return z, far, (held if held.any() else None)
