"""Where a batch sent while playing lands, and when its writer is answered, over a JACK server."""

import time

from livelatent import Engine, sine, voice

SR = 44100


def test_a_batch_sent_while_the_lookahead_is_decoded_again_lands_after_the_step_in_hand(
        jack_server, sources, monkeypatch):
    # A change landing near the listener takes back what was decoded ahead, and the decoder
    # decodes that again: a long lookahead's worth of steps. A batch sent meanwhile lands after
    # the step being decoded, not once the whole lookahead is (it waited for all of it, and
    # a decoder behind the listener kept the overload guard's relief waiting the same way)
    lookahead_steps = 2 * SR // 512
    with Engine(seed=3, lookahead=lookahead_steps * 512) as engine:
        for i in range(8):                    # steps slow enough that the lookahead takes a while
            v = voice(*sources, curve=sine(2 + i), gain=0.1, name=f"v{i}")
        engine.start("system", overload_guard=False)      # our two batches, no other writer's
        playback = engine.playback
        decoded, landed_after, rewound = [0], [], []
        advance, land = engine.timeline.advance, playback._land

        def counting_advance(count):
            decoded[0] += count
            return advance(count)

        def counting_land(item):
            before = engine.timeline.step
            land(item)
            landed_after.append(decoded[0])
            rewound.append(engine.timeline.step < before)

        monkeypatch.setattr(engine.timeline, "advance", counting_advance)
        monkeypatch.setattr(playback, "_land", counting_land)
        time.sleep(0.3)
        v.gain = 0.2                           # lands near the listener: the lookahead again
        v.gain = 0.3                           # sent as soon as the first has landed
        engine.stop_playback()
    first, second = landed_after
    assert rewound[0] and second - first < lookahead_steps // 2, (landed_after, rewound)


def test_a_batch_cancelled_before_it_landed_leaves_the_decode_thread_alone(jack_server, sources):
    # a cell interrupted (Ctrl-C) while its batch waited in the inbox: the decode thread skips
    # it. It once took the batch's missing sample as a change's, and stalled with an error
    from livelatent.engine.commands import StopVoice
    from livelatent.engine.landing import _Landing
    from livelatent.engine.writers import Batch
    with Engine(seed=3) as engine:
        v = voice(*sources, curve=sine(2), gain=0.3, name="a")
        engine.start("system", overload_guard=False)
        cancelled = _Landing(Batch(engine, "repl", commands=[StopVoice(v.index, 0)]))
        cancelled.cancelled = True
        engine.playback._inbox.put(cancelled)
        time.sleep(0.3)
        errors, playing = engine.events.texts("error"), [p.name for p in engine.intended_voices()]
        engine.stop_playback()
    assert errors == [] and playing == ["a"] and not cancelled.decided


def test_a_change_lands_on_the_first_step_it_can_be_decoded_again_for_in_time():
    """The device takes a host block a pull, a period apart; the landing step's k-th step, decoded
    again, must be ready (k + 1 recent decodes) by the pull that takes it."""
    from types import SimpleNamespace

    from livelatent.engine.landing import Landings

    def landing(untouchable, *, host_block, decode_s, rate=SR):
        fake = SimpleNamespace(engine=SimpleNamespace(step=512, sample_rate=SR),
                               _pull=lambda: host_block * SR / rate,
                               meter=SimpleNamespace(longest_recent=lambda: decode_s))
        return Landings._first_safe_step(fake, untouchable) * 512

    fast = 0.001                                  # a few voices: 44 samples of time a step
    assert landing(1024, host_block=256, decode_s=fast) == 1024    # on the first sample beyond
    assert landing(768, host_block=256, decode_s=fast) == 1024
    assert landing(2048, host_block=1024, decode_s=fast) == 2048
    near_capacity = 0.0099                        # 437 samples a step: two steps take 873 + 437,
    assert landing(2048, host_block=1024, decode_s=near_capacity) == 2560   # past the next pull
    assert landing(2048, host_block=1024, decode_s=None) == 2048   # half a step each, untimed
    assert landing(2048, host_block=1024, decode_s=0.02) == 3072   # slower than real time
    assert landing(2048, host_block=1115, decode_s=fast, rate=48000) == 2048   # a 48 kHz device


def test_a_writer_is_answered_once_what_the_device_takes_next_is_decoded_again(jack_server, sources):
    """A change sent while playing returns once the steps from where it landed to what the
    device's next pulls may take are decoded again: the writer's own Python then no longer
    competes with the decode thread for the interpreter while those are due."""
    from livelatent.engine.commands import SetTempo
    from livelatent.engine.writers import Batch

    with Engine(seed=4, blocksize=1024) as engine:
        voice(*sources, curve=sine(2))
        engine.start("system")
        try:
            time.sleep(0.3)
            for bpm in (100, 110, 120, 130):
                landed = engine.send(Batch(engine, "test", commands=[SetTempo(bpm)]))
                assert engine.playback.decoded_to >= landed + engine.step
                time.sleep(0.05)
        finally:
            engine.stop_playback()
