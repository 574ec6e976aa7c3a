"""Curves as a performer uses them: values at known beats, composition, and repr as code."""

import math

import numpy as np
import pytest

import livelatent.curves
from livelatent.curves import (Curve, as_curve, const, curve, env, noise, perlin, ramp, rand,
                               saw, seq, sine, square, tri)
from livelatent.errors import CurveError

MANY_TIMES = np.linspace(-50.0, 500.0, 20_001)


def values(c, times):
    return c(np.asarray(times, dtype=np.float64))


# -- each constructor at known beats ------------------------------------------------------
def test_sine_starts_on_source_a_and_peaks_at_half_period():
    np.testing.assert_allclose(values(sine(4), [0, 1, 2, 3, 4]), [0, 0.5, 1, 0.5, 0], atol=1e-12)


def test_tri_rises_then_falls():
    np.testing.assert_allclose(values(tri(4), [0, 1, 2, 3, 4, 5]), [0, 0.5, 1, 0.5, 0, 0.5])


def test_saw_rises_over_each_period_then_drops():
    np.testing.assert_allclose(values(saw(2), [0, 0.5, 1.5, 2, 3]), [0, 0.25, 0.75, 0, 0.5])


def test_square_is_high_for_the_last_duty_fraction():
    np.testing.assert_array_equal(values(square(4), [0, 1.9, 2, 3.9, 4]), [0, 0, 1, 1, 0])
    np.testing.assert_array_equal(values(square(4, duty=0.25), [0, 2.9, 3, 3.9]), [0, 0, 1, 1])


def test_ramp_goes_linearly_then_holds():
    np.testing.assert_allclose(values(ramp(8), [-1, 0, 4, 8, 100]), [0, 0, 0.5, 1, 1])
    np.testing.assert_allclose(values(ramp(4, 1, 0), [0, 2, 9]), [1, 0.5, 0])


def test_env_interpolates_breakpoints_holds_ends_and_jumps_on_a_repeated_time():
    c = env([(0, 0), (4, 1), (6, 0)])
    np.testing.assert_allclose(values(c, [-1, 0, 2, 4, 5, 6, 10]), [0, 0, 0.5, 1, 0.5, 0, 0])
    jump = env([(0, 0), (2, 0), (2, 1)])
    np.testing.assert_array_equal(values(jump, [1.999, 2, 3]), [0, 1, 1])


def test_seq_holds_each_value_for_a_step_and_cycles():
    c = seq([0, 0.5, 1], 2)
    np.testing.assert_array_equal(values(c, [0, 1.9, 2, 4, 5.9, 6, 13]), [0, 0, 0.5, 1, 1, 0, 0])
    assert c(-0.5) == 1.0  # before time 0 the cycle runs backwards, like any periodic curve


def test_const_and_plain_numbers():
    np.testing.assert_array_equal(values(const(0.25), [0, 7]), [0.25, 0.25])
    assert as_curve(0.5)(3.0) == 0.5


# -- ranges and randomness ----------------------------------------------------------------
@pytest.mark.parametrize("c", [sine(3), tri(0.7), saw(5), square(2, duty=0.3), noise(1),
                               noise(7, 0.25), perlin(2), perlin(9, 3), rand(4), rand(5, 2)],
                         ids=repr)
def test_oscillators_and_noises_stay_within_0_and_1_and_move(c):
    v = c(MANY_TIMES)
    assert v.min() >= 0.0 and v.max() <= 1.0
    assert v.std() > 0.05


@pytest.mark.parametrize("make", [noise, perlin])
def test_noise_is_smooth(make):
    t = np.arange(0.0, 64.0, 1e-3)
    assert np.abs(np.diff(make(3)(t))).max() < 0.01


def test_rand_holds_its_value_for_a_step():
    v = rand(1, step=0.25)(np.arange(0.0, 8.0, 0.0625))
    held = v.reshape(-1, 4)
    assert (held == held[:, :1]).all()
    assert len(np.unique(held[:, 0])) == len(held)
    assert rand(1).__repr__() == "rand(1, step=0.0625)"  # the default step is 1/16 beat


@pytest.mark.parametrize("make", [noise, perlin, rand])
def test_randomness_is_fixed_by_the_seed(make):
    t = np.random.default_rng(0).uniform(0, 100, 1000)
    np.testing.assert_array_equal(make(3)(t), make(3)(t))
    assert not np.allclose(make(3)(t), make(4)(t))


def test_values_do_not_depend_on_how_times_are_batched():
    c = (sine(8).range(0.2, 0.9) + 0.1 * noise(3) + 0.1 * rand(2)).fast(2)
    t = np.random.default_rng(1).uniform(0, 100, 64)
    whole = c(t)
    np.testing.assert_array_equal(np.concatenate([c(t[:10]), c(t[10:])]), whole)
    assert [c(float(x)) for x in t] == whole.tolist()


# -- transformations ------------------------------------------------------------------------
def test_fast_slow_shift_segment():
    t = np.linspace(0, 20, 201)
    np.testing.assert_allclose(saw(4).fast(2)(t), saw(2)(t))
    np.testing.assert_allclose(saw(4).slow(2)(t), saw(8)(t))
    np.testing.assert_allclose(ramp(4).shift(2)(t), np.clip((t - 2) / 4, 0, 1))  # later, like ~>
    assert ramp(4).shift(-2)(0.0) == 0.5
    stepped = saw(4).segment(2)
    np.testing.assert_array_equal(values(stepped, [0, 0.4, 0.5, 0.99, 1.0]),
                                  [0, 0, 0.125, 0.125, 0.25])


def test_range_and_clip():
    np.testing.assert_allclose(values(sine(4).range(0.2, 0.8), [0, 2]), [0.2, 0.8])
    np.testing.assert_allclose(values(saw(4).range(1, -1), [0, 2]), [1, 0])
    np.testing.assert_array_equal(values((3 * saw(4) - 1).clip(0, 1), [0, 1, 2, 3.5]),
                                  [0, 0, 0.5, 1])


def test_arithmetic_with_numbers_and_curves():
    t = np.linspace(0, 10, 101)
    s, w = sine(4)(t), saw(3)(t)
    cases = [(sine(4) + 1, s + 1), (1 - sine(4), 1 - s), (2 * saw(3), 2 * w), (saw(3) / 2, w / 2),
             (1 / (saw(3) + 1), 1 / (w + 1)), (saw(3) ** 2, w**2), (2 ** saw(3), 2**w),
             (-saw(3), -w), (abs(sine(4) - 0.5), np.abs(s - 0.5)), (sine(4) * saw(3), s * w),
             (sine(4) - saw(3), s - w), (+sine(4), s), (np.float64(2) * sine(4), 2 * s)]
    for c, expected in cases:
        assert isinstance(c, Curve)
        np.testing.assert_allclose(c(t), expected, err_msg=repr(c))


def test_arithmetic_with_other_things_is_a_type_error():
    with pytest.raises(TypeError):
        sine() + "0.5"


def test_scalar_calls_give_floats_and_arrays_keep_their_shape():
    c = sine(4).range(0, 2) + noise(1)
    assert type(c(1.5)) is float and type(c(2)) is float
    grid = np.arange(12).reshape(3, 4)
    out = c(grid)
    assert out.shape == (3, 4) and out.dtype == np.float64
    np.testing.assert_array_equal(out.ravel(), c(grid.ravel().astype(float)))
    assert c([0.0, 1.0]).shape == (2,)


# -- repr is code -------------------------------------------------------------------------------
CODE_CURVES = [
    (sine(8).range(0.2, 0.9) + 0.1 * noise(3)).fast(2).clip(0, 1),
    seq([0, 0.5, 1], 2).segment(4),
    env([(0, 0), (4, 1)]),
    1 - tri(4),
    -saw(2) ** 2,
    (-2) ** tri(2).segment(1) + 0.1 / (sine(1.0 / 3) + 1.5),  # (-2) ** needs parentheses
    square(3, duty=0.2).shift(0.1) * ramp(16, 0.25, 0.75).slow(1.7),
    abs(perlin(5, 2.5) - 0.5) + rand(-3, step=0.3),
    const(-0.0) - 1e-300 * seq(np.array([0.1, 0.7, 1 / 3])),
    env([(0.5, 1), (1, -2), (1, 3), (7.25, 0.1)]).shift(-1.5).segment(3),
]


@pytest.mark.parametrize("c", CODE_CURVES, ids=repr)
def test_repr_rebuilds_the_curve(c):
    t = np.random.default_rng(2).uniform(-20, 200, 1000)
    rebuilt = eval(repr(c), vars(livelatent.curves))
    assert c.is_code
    np.testing.assert_array_equal(rebuilt(t), c(t))
    assert repr(rebuilt) == repr(c)


def test_repr_reads_like_what_the_performer_typed():
    assert repr(1 - tri(4)) == "(1.0 - tri(4.0))"
    assert repr(seq([0, 0.5, 1], 2).segment(4)) == "seq([0.0, 0.5, 1.0], 2.0).segment(4.0)"


# -- curves from Python functions -------------------------------------------------------------
def test_curve_from_a_numpy_function():
    t = np.linspace(0, 10, 50)
    np.testing.assert_allclose(curve(lambda t: np.sin(t) ** 2)(t), np.sin(t) ** 2)


def test_curve_from_a_math_function_falls_back_to_one_call_per_time():
    t = np.linspace(0, 10, 50)
    c = curve(lambda t: math.sin(t) ** 2)
    np.testing.assert_allclose(c(t), np.sin(t) ** 2)
    assert c(1.0) == math.sin(1.0) ** 2


def test_curve_returning_a_constant_holds_it_everywhere():
    np.testing.assert_array_equal(curve(lambda t: 0.3)(np.arange(5.0)), [0.3] * 5)


def test_curve_from_a_function_returns_a_fresh_array():
    t = np.arange(4.0)
    out = curve(lambda t: t)(t)
    out[:] = 9.0
    np.testing.assert_array_equal(t, np.arange(4.0))


def test_curve_from_a_function_lets_its_errors_through_and_is_not_code():
    def broken(t):
        raise ZeroDivisionError("oops")
    c = 0.5 * curve(broken) + sine()
    with pytest.raises(ZeroDivisionError, match="oops"):
        c(np.arange(4.0))
    assert not c.is_code
    assert "curve(<function " in repr(c) and "broken>)" in repr(c)


def test_curve_from_a_function_returning_nonsense_is_a_curve_error():
    with pytest.raises(CurveError, match="one real number per time"):
        curve(lambda t: [1.0, 2.0])(np.arange(3.0))
    # None (print, a function without a return) was read as NaN: "the curve returned nan"
    with pytest.raises(CurveError, match=r"returned None \(a missing return\?\)"):
        curve(print)(np.arange(3.0))


# -- bad input -------------------------------------------------------------------------------
def test_as_curve_accepts_numbers_curves_and_functions():
    c = sine(2)
    assert as_curve(c) is c
    assert as_curve(lambda t: t)(2.5) == 2.5
    assert as_curve(np.float32(0.5))(1.0) == 0.5


def test_as_curve_refuses_a_string_and_names_it():
    with pytest.raises(CurveError, match="'sine'"):
        as_curve("sine")


@pytest.mark.parametrize("make", [
    lambda: sine(0), lambda: tri(-1), lambda: saw(float("nan")), lambda: square(duty=2),
    lambda: ramp(0), lambda: seq([]), lambda: seq("abc"), lambda: seq([0, "x"]),
    lambda: env([]), lambda: env([(1, 0), (0, 1)]), lambda: env([1, 2]),
    lambda: noise(seed=1.5), lambda: rand(step=0), lambda: sine().fast(0),
    lambda: sine().clip(1, 0), lambda: sine().range(0, float("inf")), lambda: const("1"),
    lambda: curve(3), lambda: sine() + float("nan"),
])
def test_bad_arguments_are_curve_errors(make):
    with pytest.raises(CurveError):
        make()


def test_curve_values_refuse_text_and_too_fine_steps_without_numpy_warnings():
    import warnings
    from livelatent.curves import curve, noise, perlin, rand, seq, sine
    from livelatent.voice import curve_values
    times = np.arange(0.0, 64.0, 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # numpy's warnings reached the performer's terminal
        for made in (sine(4) / 0, 0 / sine(4), (-sine(4) - 0.1) ** 0.5, sine(4) ** -1):
            with pytest.raises(CurveError, match="the curve returned (nan|inf)"):
                curve_values(made, times)
        # t / step past int64 read one wrong cell for every time (rand was constant)
        for fine in (rand(1, step=1e-300), seq([0.2, 0.8], 1e-300), noise(1).fast(1e308),
                     perlin(2, 1e-300)):
            with pytest.raises(CurveError, match="go past 2..62 .a step or period far too small"):
                curve_values(fine, times)
    # text read as a number ("0.5" played 0.5); a function's bools are a gate's 0 and 1
    for text in (curve(lambda t: "0.5"), curve(lambda t: ["0.5"] * len(t)),
                 curve(lambda t: "x" if t > 1 else 0.5)):
        with pytest.raises(CurveError, match="(returned|raised)"):
            curve_values(text, times)
    np.testing.assert_array_equal(curve_values(curve(lambda t: t >= 2), times), times >= 2)


def test_a_numpy_scalar_or_0d_array_combines_with_a_curve_as_a_number_does():
    # sine(4) * np.array(0.5) was "operand 'Curve' does not support ufuncs", though gain= takes it
    from livelatent.curves import sine
    times = np.arange(0.0, 8.0, 0.25)
    for other in (np.array(0.5), np.float32(0.5), np.int64(2)):
        np.testing.assert_allclose((sine(4) * other)(times), sine(4)(times) * float(other))
        np.testing.assert_allclose((other * sine(4))(times), sine(4)(times) * float(other))
    with pytest.raises(TypeError):
        sine(4) * np.array([0.5, 0.6])            # (not one number)
