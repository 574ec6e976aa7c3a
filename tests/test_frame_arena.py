"""The frame arena gives back the rows of frames nobody holds any more, and moving rows changes
nothing a voice plays."""

import gc

import numpy as np

from livelatent.engine.frames import FrameArena
from livelatent.live_source import LiveFrames
from livelatent.sources import LatentFrames

LATENT = 4


def frames(count: int, value: float) -> LatentFrames:
    mu = np.full((count, LATENT), value, dtype=np.float32) + np.arange(count, dtype=np.float32)[:, None]
    return LatentFrames(mu, -mu, hop=512)


def held_at(arena: FrameArena, kept: LatentFrames) -> bool:
    start = arena.offset(kept)
    rows = arena.rows[:, start:start + len(kept)]
    return np.array_equal(rows[0], kept.mu) and np.array_equal(rows[1], kept.logvar / 2)


def test_rows_of_frames_gone_are_reused_and_frames_kept_move_whole():
    arena = FrameArena(LATENT, first_rows=128)     # 20 kept and 20 new: at most half of it
    arena.offset(frames(30, -1.0))                 # dropped at once: the kept frames move down
    kept = frames(20, 100.0)
    first = arena.offset(kept)
    before, generation = arena.rows, arena.generation
    for i in range(40):                      # 800 rows placed in all, each set dropped at once
        arena.offset(frames(20, float(i)))
        gc.collect()
    assert arena.rows.shape[1] == 128        # never grown: the dropped sets gave their rows back
    assert arena.generation > generation and arena.generation % 2 == 0
    assert arena.offset(kept) != first and held_at(arena, kept)
    assert np.array_equal(before[0, first:first + 20], kept.mu)   # an array in use never changes


def test_the_arena_grows_when_what_is_kept_fills_more_than_half():
    arena = FrameArena(LATENT, first_rows=64)
    kept = [frames(20, float(i)) for i in range(5)]
    for each in kept:
        arena.offset(each)
    assert arena.rows.shape[1] == 128          # 64, then twice that when 80 rows were wanted
    assert all(held_at(arena, each) for each in kept)


def test_frames_with_the_same_numbers_share_rows_across_a_move_and_come_back_after_one():
    arena = FrameArena(LATENT, first_rows=64)
    arena.offset(frames(10, -1.0))                 # dropped: what is kept moves
    first = frames(20, 7.0)
    arena.offset(first)
    for i in range(4):                             # moves
        arena.offset(frames(20, float(i)))
        gc.collect()
    again = frames(20, 7.0)                        # the same numbers, a new object
    assert arena.offset(again) == arena.offset(first) and held_at(arena, again)
    del first, again
    gc.collect()
    for i in range(4):                             # the numbers' rows given back
        arena.offset(frames(20, float(10 + i)))
        gc.collect()
    back = frames(20, 7.0)                         # placed anew, not at the stale offset
    assert held_at(arena, back)


def test_a_live_ring_keeps_its_offset_and_its_rows_reach_every_array_holding_it():
    arena = FrameArena(LATENT, first_rows=64)
    arena.offset(frames(10, 1.0))            # (dropped: the ring's rows come after its rows)
    silence = (np.zeros(LATENT, np.float32), np.zeros(LATENT, np.float32))
    ring = LiveFrames(LATENT, ring=15, hop=512, silence=silence)
    start = arena.offset(ring)
    old = arena.rows
    kept = frames(12, 50.0)
    arena.offset(kept)
    for i in range(20):
        arena.offset(frames(12, float(i)))
        gc.collect()
    assert arena.rows is not old and arena.offset(ring) == start
    assert held_at(arena, kept)
    assert not set(range(start, start + len(ring))) & set(range(arena.offset(kept),
                                                                arena.offset(kept) + len(kept)))
    mu = np.full((3, LATENT), 9.0, dtype=np.float32)
    ring.write(4, mu, 2 * mu)
    for array in (old, arena.rows):
        assert np.array_equal(array[0, start + 5:start + 8], mu)
        assert np.array_equal(array[1, start + 5:start + 8], mu)


def test_a_ring_placed_after_a_move_is_not_written_into_older_arrays():
    """An array made before a ring was placed holds other frames where the ring is: a table
    built on it still reads them."""
    arena = FrameArena(LATENT, first_rows=64)
    silence = (np.zeros(LATENT, np.float32), np.zeros(LATENT, np.float32))
    first_ring = LiveFrames(LATENT, ring=7, hop=512, silence=silence)
    arena.offset(first_ring)
    arena.offset(frames(30, -1.0))           # dropped
    kept = frames(20, 5.0)
    at_first = arena.offset(kept)
    old = arena.rows
    arena.offset(frames(20, 6.0))            # full: a move; the kept frames go lower
    assert arena.rows is not old
    second_ring = LiveFrames(LATENT, ring=7, hop=512, silence=silence)
    start = arena.offset(second_ring)
    assert start < at_first + len(kept)      # where the old array holds the kept frames
    second_ring.write(0, np.full((7, LATENT), 9.0, np.float32), np.zeros((7, LATENT), np.float32))
    assert np.array_equal(old[0, at_first:at_first + 20], kept.mu)
    assert np.array_equal(arena.rows[0, start + 1:start + 8], np.full((7, LATENT), 9.0))


def test_a_table_placing_its_frames_while_rows_move_places_them_again():
    """The seqlock: a move between a table's first and last frames (here, placing its second
    frames moves the rows) leaves no offset of one array beside the rows of another."""
    from types import SimpleNamespace

    from livelatent.engine.voice_table import VoiceTable

    arena = FrameArena(LATENT, first_rows=64)
    arena.offset(frames(30, -1.0))            # dropped: the next move moves the first frames
    a, b = frames(20, 1.0), frames(20, 2.0)   # b does not fit: placing it moves a
    plan = SimpleNamespace(terms=2, frames=[a, b], index_column=[-1, -1])
    table = SimpleNamespace(n=1)
    VoiceTable._place_terms(table, [SimpleNamespace(plan=plan)], arena)
    for j, each in enumerate((a, b)):
        start = table.term_offset[0, j]
        assert np.array_equal(table.arena[0, start:start + len(each)], each.mu)


def test_new_sources_cell_after_cell_play_the_same_in_a_small_arena(monkeypatch):
    """Each of 48 cells plays a new source (new numbers) and drops the last: in an arena a few sources
    large the rows move again and again, and the render is the same, sample for sample, as in an
    arena that never moves a row."""
    from livelatent import Engine, sine, source, voice
    from livelatent.engine import frames as frames_module

    rng = np.random.default_rng(3)
    tone = (0.3 * np.sin(np.arange(44100) * 0.02)).astype(np.float32)
    sounds = [(rng.normal(0, 0.2, 44100).astype(np.float32), tone) for _ in range(48)]

    def played(first_rows):
        monkeypatch.setattr(frames_module, "_FIRST_ROWS", first_rows)
        with Engine(seed=2) as engine:
            blocks, previous = [], None
            for i, (noise, tone) in enumerate(sounds):
                a, b = source(noise, name=f"noise{i}"), source(tone, name=f"tone{i}")
                new = voice(a, b, curve=sine(2 + i), gain=0.5)
                if previous is not None:
                    previous.stop(fade=0.01)
                previous = new
                del a, b
                blocks.append(engine.render_array(0.2))
                gc.collect()
            return np.concatenate(blocks), engine.frames.rows.shape[1], len(engine.frames)

    small, size, used = played(512)
    large, _, _ = played(1 << 16)
    assert size <= 2048 and used <= size     # 48 noises of 86 frames (4128 rows) and one tone
    np.testing.assert_array_equal(small, large)
