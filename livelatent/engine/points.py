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


def latent_points(t, v, frame, channels) -> np.ndarray:
    """(m, 2 latent): each window's weighted sum of its latent series' frames (mean and
    log-variance), one gather per term for all the voices that have it. A voice with many
    one-frame terms (a mapping's rows) mixes those in one product of its weights and rows."""
    grouped = t.grouped
    mixed = np.zeros((v.size, t.arena.shape[1]), dtype=np.float32) if grouped else None
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
        gathered = t.arena[t.term_offset[vj, j] + index]   # a copy: weighted in place
        gathered *= chans[:, j][:, None]
        if mixed is None:
            mixed = gathered
        elif rows is None:
            mixed += gathered
        else:
            mixed[rows] += gathered
    if grouped:
        for voice in np.unique(v[t.one_frame[v].any(axis=1)]):
            rows = np.flatnonzero(v == voice)
            terms = np.flatnonzero(t.one_frame[voice])
            mixed[rows] += channels[rows][:, terms] @ t.arena[t.term_offset[voice, terms]]
    return mixed if mixed is not None else np.zeros((v.size, t.arena.shape[1]), dtype=np.float32)


def spread_grains(t, v, channels, z, logvar, sampled, noise_rows, slot, row):
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
    variance[own] += np.exp(logvar[cloud[own]])
    z[cloud] += np.sqrt(variance) * noise_rows[slot[cloud], row[cloud]]
    rest = sampled.copy()
    rest[cloud] = False
    return rest


def decoded_points(t, v, frame, channels, noise_rows, slot, row, latent: int):
    """The latent point each window decodes: the weighted mix of :func:`latent_points`, moved by
    its noise (standard deviation ``exp(logvar / 2)``) unless the voice is deterministic, and by
    a cloud's spread. Returns ``(z, far, held)``: ``far`` marks the windows whose point is
    beyond :data:`FAR` on some axis, ``held`` those whose point was beyond
    :data:`LATENT_LIMIT` (or not a number) and was held at it; None when there are none."""
    with np.errstate(over="ignore", invalid="ignore"):     # (handled below, once per voice)
        mixed = latent_points(t, v, frame, channels)
        z, logvar = mixed[:, :latent], mixed[:, latent:]
        sampled = ~t.deterministic[v]
        if t.clouds:
            sampled = spread_grains(t, v, channels, z, logvar, sampled, noise_rows, slot, row)
        if sampled.all():
            logvar *= 0.5
            np.exp(logvar, out=logvar)
            logvar *= noise_rows[slot, row]
            z += logvar
        elif sampled.any():
            z[sampled] += np.exp(0.5 * logvar[sampled]) * noise_rows[slot[sampled], row[sampled]]
    if not z.size or (z.max() <= FAR and z.min() >= -FAR):           # (NaN fails both)
        return z, None, None
    reach = np.abs(z).max(axis=1)
    far, held = ~(reach <= FAR), ~(reach <= LATENT_LIMIT)
    if held.any():
        np.nan_to_num(z, copy=False, nan=0.0, posinf=LATENT_LIMIT, neginf=-LATENT_LIMIT)
        np.clip(z, -LATENT_LIMIT, LATENT_LIMIT, out=z)
    return z, far, (held if held.any() else None)
