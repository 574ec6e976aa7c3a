"""Offline rendering: the engine's timeline moved many steps at a time, as fast as it goes.

The same steps as live playback, in larger spans (256 steps, big decode batches). Samples the
last span produced beyond what was asked stay with the engine as leftover, so renders in pieces
join seamlessly, and live playback plays them first when it starts.
"""

from __future__ import annotations

from ..errors import LiveLatentError, ParameterError, check_number, is_whole

__all__ = ["render_chunks", "render_total", "check_seconds", "remake_leftover", "MAX_RENDER_S"]

MAX_RENDER_S = 24 * 3600


def render_total(engine, seconds, samples) -> int | None:
    """How many samples a render asked with ``seconds`` or ``samples`` makes (None: until the
    voices end)."""
    if samples is not None:         # (no upper bound: resumes render the gaps between cells)
        if seconds is not None:
            raise ParameterError(f"give seconds={seconds!r} or samples={samples!r}, not both")
        if not is_whole(samples) or samples < 0:
            raise ParameterError(f"samples={samples!r} must be a whole number from 0")
        return int(samples)
    if seconds is None:
        if engine.loops():
            raise ParameterError("seconds=None renders until every voice ends, but some voices "
                                 "loop: give seconds=")
        return None
    return int(round(check_seconds(seconds) * engine.sample_rate))


def check_seconds(seconds, name: str = "seconds") -> float:
    """``seconds`` of a render: a number from 0 to :data:`MAX_RENDER_S`."""
    return check_number(seconds, name=name, low=0.0, high=MAX_RENDER_S,
                        meaning=f"of seconds from 0 to {MAX_RENDER_S}")


def render_chunks(engine, total: int | None, *, chunk_steps: int, max_seconds: float, progress,
                  hooks):
    """Yield rendered blocks until ``total`` samples are rendered (None: until all voices end).

    ``hooks(engine, first, end)`` run before each span (timers send their changes there).
    """
    _not_playing(engine)
    timeline, step, handoff = engine.timeline, engine.step, engine.handoff
    limit = int(check_seconds(max_seconds, "max_seconds") * engine.sample_rate)
    produced = 0
    with engine.timeline_lock():
        while total is None or produced < total:
            if handoff.leftover_size:
                block = handoff.take_leftover()
            else:
                if total is None and engine.idle():
                    return
                if total is None and produced >= limit:
                    raise LiveLatentError(f"the voices still play after {max_seconds:g} s; "
                                          f"give seconds=")
                want = chunk_steps * step if total is None else total - produced
                steps = max(1, min(chunk_steps, -(-want // step)))
                first = timeline.step * step
                for hook in list(hooks):
                    hook(engine, first, first + steps * step)
                handoff.note_span(first, timeline.checkpoint())
                block = timeline.advance(steps)
                timeline.forget_before(handoff.oldest_span_step())   # what a span made again needs
                if total is None and timeline.played_out():
                    block = block[:max(0, engine.sound_end - first)]   # the exact end
                    total = produced + block.shape[0]
            if total is not None and produced + block.shape[0] > total:
                # keep what runs past the end for the next render: renders join seamlessly
                handoff.give_leftover(block[total - produced:])
                block = block[:total - produced]
            produced += block.shape[0]
            handoff.handed_out(block)
            if progress is not None:
                progress(block.shape[0])
            yield block


def remake_leftover(engine) -> bool:
    """Render the leftover again from the checkpoint before the span it came from, so that a
    stem sink set now receives each voice's part of it (the samples come out the same, within
    rounding: with stems the bank mixes each voice apart before summing). False
    when there is no leftover, or no noted span reaches back to it (left by live playback)."""
    _not_playing(engine)
    handoff, timeline, step = engine.handoff, engine.timeline, engine.step
    with engine.timeline_lock():
        size = handoff.leftover_size
        end = timeline.step * step
        span = handoff.span_before(end - size) if size else None
        if span is None:
            return False
        first, checkpoint = span
        where, leftover = timeline.checkpoint(), handoff.take_leftover()
        try:
            timeline.rewind(checkpoint)
            block = timeline.advance((end - first) // step)
        except BaseException:                     # back to where the render had stopped
            timeline.rewind(where)
            handoff.give_leftover(leftover)
            raise
        handoff.give_leftover(block[end - size - first:])
        return True


def _not_playing(engine) -> None:
    if engine.playback is not None:
        raise LiveLatentError("this engine is playing live; render a copy instead "
                              "(the REPL's render() does)")
