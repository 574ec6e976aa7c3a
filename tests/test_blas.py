"""One BLAS thread while anyone holds it; the count from before comes back when all let go."""

from threadpoolctl import threadpool_info, threadpool_limits

from livelatent.blas import hold_one_blas_thread, one_blas_thread, release_blas_threads


def blas_threads():
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


def test_overlapping_holders_restore_the_count_from_before_the_first():
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        # playing starts, a background render starts, playing stops, the render ends
        hold_one_blas_thread()
        with one_blas_thread():
            release_blas_threads()
            assert blas_threads() == {1}            # the render still needs it
        assert blas_threads() == before
        # a render starts, then playing, the render ends, playing stops
        with one_blas_thread():
            hold_one_blas_thread()
        assert blas_threads() == {1}
        release_blas_threads()
        assert blas_threads() == before
        release_blas_threads()                      # one release too many changes nothing
        assert blas_threads() == before
