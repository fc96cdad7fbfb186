"""The specialised loops for the common windows (fused 2x2/3x3 forward loops, the gather-form
3x3 stride-2 mean backward, the tiled 2x2 backward) agree with the reference bit for bit, on
every small plane size where the edges of the specialised region show: planes of 1 to 9 rows
and columns, padding 0 and 1, both rounding modes and divisor rules.

The property tests compare with a tolerance; these pin the exact sums, which those loops take
in the reference's order (and the sign of a zero sum with them). The scatter-form mean
backward of other overlapping windows (3x3 stride 1 here) adds a position's shares in tap
order, not window order: equal to the reference up to rounding only."""

import itertools

import numpy as np
import pytest

import poolkit
from poolkit import reference

SIDES = range(1, 10)
DTYPES = [np.float32, np.float64]


def _configs(k, s):
    for H, W, pad, ceil_mode in itertools.product(SIDES, SIDES, (0, 1), (False, True)):
        if pad > k // 2 or H + 2 * pad < k or W + 2 * pad < k:
            continue
        yield H, W, pad, ceil_mode


def _input(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    x[rng.random(shape) < 0.1] = -0.0   # signed zeros: the sums start from +0 as the reference
    return x


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k, s", [(3, 2), (3, 1), (2, 2)])
@pytest.mark.parametrize("count_include_pad, divisor_override",
                         [(True, None), (False, None), (True, 5)])
def test_mean_forward_and_backward_are_the_reference_bit_for_bit(k, s, dtype, count_include_pad,
                                                                 divisor_override):
    for i, (H, W, pad, ceil_mode) in enumerate(_configs(k, s)):
        params = dict(kernel_size=k, stride=s, padding=pad, ceil_mode=ceil_mode,
                      count_include_pad=count_include_pad, divisor_override=divisor_override)
        x = _input((2, 1, H, W), dtype, i)
        try:
            want = reference.avg_pool2d(x, **params)
        except ValueError:
            with pytest.raises(ValueError):
                poolkit.avg_pool2d(x, **params)
            continue
        got = poolkit.avg_pool2d(x, **params)
        assert got.tobytes() == want.tobytes(), (H, W, params)

        g = _input(want.shape, dtype, 1000 + i)
        gx = poolkit.avg_pool2d_backward(g, x.shape, **params)
        gx_want = reference.avg_pool2d_backward(g, x.shape, **params)
        if s == 1:
            np.testing.assert_allclose(gx, gx_want, rtol=0,
                                       atol=16 * np.finfo(dtype).eps * np.abs(g).max())
        else:
            assert gx.tobytes() == gx_want.tobytes(), (H, W, params)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k, s", [(3, 2), (3, 1), (2, 2)])
def test_max_forward_is_the_reference_bit_for_bit(k, s, dtype):
    for i, (H, W, pad, ceil_mode) in enumerate(_configs(k, s)):
        params = dict(kernel_size=k, stride=s, padding=pad, ceil_mode=ceil_mode)
        x = _input((2, 1, H, W), dtype, i)
        x[0, 0].flat[i % (H * W)] = np.nan
        try:
            want_v, want_i = reference.max_pool2d(x, return_indices=True, **params)
        except ValueError:
            continue
        got_v, got_i = poolkit.max_pool2d(x, return_indices=True, **params)
        assert got_v.tobytes() == want_v.tobytes(), (H, W, params)
        np.testing.assert_array_equal(got_i, want_i)
        # the values-only loops (fused 2x2 and 3x3 too) pick the same values
        assert poolkit.max_pool2d(x, **params).tobytes() == want_v.tobytes(), (H, W, params)


def test_gather_backward_writes_every_position_once_with_no_stale_values():
    # out= full of garbage: positions no window covers must come back 0, the rest their sums
    x_shape = (1, 2, 9, 8)
    g = _input((1, 2, 4, 3), np.float32, 7)
    out = np.full(x_shape, np.nan, np.float32)
    poolkit.avg_pool2d_backward(g, x_shape, 3, 2, out=out)
    np.testing.assert_array_equal(out, reference.avg_pool2d_backward(g, x_shape, 3, 2))
    assert np.all(out[:, :, :, 7] == 0)   # column 7: outside every window (floor mode)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k, s", [(3, 2), (3, 1), (2, 2)])
def test_stochastic_training_is_the_reference_bit_for_bit(k, s, dtype):
    # the fused sampling loops (2x2 stride 2; 3x3 stride 1 and 2, edges one window at a time)
    # draw the same positions as the reference; sparse inputs give zero-sum windows too
    for i, (H, W, pad, ceil_mode) in enumerate(_configs(k, s)):
        params = dict(kernel_size=k, stride=s, padding=pad, ceil_mode=ceil_mode)
        x = np.abs(_input((2, 2, H, W), dtype, i))
        x[x < 0.5] = 0
        try:
            want_v, want_i = reference.stochastic_pool2d(x, rng=i, return_indices=True,
                                                         **params)
        except ValueError:
            continue
        got_v, got_i = poolkit.stochastic_pool2d(x, rng=i, return_indices=True, **params)
        assert got_v.tobytes() == want_v.tobytes(), (H, W, params)
        np.testing.assert_array_equal(got_i, want_i)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sh", [1, 2, 3])
def test_stochastic_3x3_column_stride_2_rows_are_the_reference_bit_for_bit(sh, dtype):
    # 3x3 windows of column stride 2 on planes tall enough for two output rows at a time
    # (which only row stride 2 may take: its second row starts two input rows down) and rows
    # of 1 to 4 vector blocks, with and without padding and ceil mode
    for i, (H, W) in enumerate(itertools.product(range(5, 12), (14, 17, 28, 29, 33, 56, 65))):
        x = np.abs(_input((1, 2, H, W), dtype, i))
        x[x < 0.5] = 0
        for pad, ceil_mode in itertools.product((0, 1), (False, True)):
            params = dict(kernel_size=3, stride=(sh, 2), padding=pad, ceil_mode=ceil_mode)
            want_v, want_i = reference.stochastic_pool2d(x, rng=i, return_indices=True,
                                                         **params)
            got_v, got_i = poolkit.stochastic_pool2d(x, rng=i, return_indices=True, **params)
            assert got_v.tobytes() == want_v.tobytes(), (H, W, params)
            np.testing.assert_array_equal(got_i, want_i, err_msg=str((H, W, params)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k, s, pad", [(2, 2, 0), (3, 2, 1), (3, 1, 1), (3, 2, 0)])
def test_fused_loops_on_rows_of_every_length_up_to_a_few_blocks(k, s, pad, dtype):
    # The fused loops run rows in blocks of 8 outputs (4 for float64), the last block
    # overlapping the one before; rows of 1 to 35 outputs cover every overlap and the plain
    # loops below a block. 7 rows: with stride 2, two output rows at a time (3x3 windows on
    # rows of at most 4 blocks) with and without padding, and single rows.
    for W in range(3, 72, 1 if s == 2 else 2):
        x = _input((1, 2, 7, W), dtype, W)
        x[0, 1].flat[W % 7] = np.nan
        params = dict(kernel_size=k, stride=s, padding=pad)
        want_v, want_i = reference.max_pool2d(x, return_indices=True, **params)
        got_v, got_i = poolkit.max_pool2d(x, return_indices=True, **params)
        assert got_v.tobytes() == want_v.tobytes(), W
        np.testing.assert_array_equal(got_i, want_i)
        assert poolkit.max_pool2d(x, **params).tobytes() == want_v.tobytes(), W
        x = np.nan_to_num(x)
        want = reference.avg_pool2d(x, **params)
        assert poolkit.avg_pool2d(x, **params).tobytes() == want.tobytes(), W
        if s == 2:   # the gather-form and tiled backward loops
            g = _input(want.shape, dtype, 100 + W)
            assert poolkit.avg_pool2d_backward(g, x.shape, **params).tobytes() == \
                reference.avg_pool2d_backward(g, x.shape, **params).tobytes(), W
        xs = np.abs(x)
        xs[xs < 0.4] = 0
        want_v, want_i = reference.stochastic_pool2d(xs, rng=W, return_indices=True, **params)
        got_v, got_i = poolkit.stochastic_pool2d(xs, rng=W, return_indices=True, **params)
        assert got_v.tobytes() == want_v.tobytes(), W
        np.testing.assert_array_equal(got_i, want_i)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sh", [1, 2, 3])
def test_separable_3x3_max_keeps_the_first_winner_on_ties_zeros_infs_and_nans(sh, dtype):
    # 3x3 windows of column stride 2 take the first winner of each row, then the first of
    # those down the window (row maxima shared between output rows, 8 windows per vector
    # block, the left-padding window inside the first block). Ties everywhere: values from
    # {-inf, -1, -0.0, +0.0, 1, nan}, so which of two equal values wins shows in the index
    # (and in the sign of a zero).
    values = np.array([-np.inf, -1, -0.0, 0.0, 1, np.nan], dtype)
    rng = np.random.default_rng(sh)
    for H, W in itertools.product(range(1, 8), range(14, 42, 3)):
        p = rng.random(len(values))
        p[-1] *= 0.1   # fewer NaNs, so that most windows are decided by ties
        x = rng.choice(values, size=(1, 3, H, W), p=p / p.sum())
        x[0, 2] = -np.inf   # a plane of -inf: every window reports its first position
        for pad, ceil_mode in itertools.product((0, 1), (False, True)):
            params = dict(kernel_size=3, stride=(sh, 2), padding=pad, ceil_mode=ceil_mode)
            try:
                want_v, want_i = reference.max_pool2d(x, return_indices=True, **params)
            except ValueError:
                continue
            got_v, got_i = poolkit.max_pool2d(x, return_indices=True, **params)
            assert got_v.tobytes() == want_v.tobytes(), (H, W, params)
            np.testing.assert_array_equal(got_i, want_i, err_msg=str((H, W, params)))
            assert poolkit.max_pool2d(x, **params).tobytes() == want_v.tobytes(), (H, W, params)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")   # the reference's inf - inf
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sh", [1, 2, 3])
def test_3x3_stride_2_mean_rows_forward_and_backward_are_the_reference_bit_for_bit(sh, dtype):
    # 3x3 windows of column stride 2: blocks of 8 windows, the padded window 0 inside the
    # first block (its missing column taken as -0.0), every divisor rule; zeros of both
    # signs and infinities keep their exact results, NaNs stay NaN.
    values = np.array([-np.inf, -1.5, -0.0, 0.0, 0.25, 3.0, np.inf, np.nan], dtype)
    rng = np.random.default_rng(10 + sh)
    # (rows of 32 outputs or more take the row-by-row mean backward, shorter ones the
    # whole-plane one)
    for H, W in itertools.product(range(1, 8), [*range(14, 42, 3), 63, 64, 66]):
        p = np.array([1, 4, 8, 8, 4, 4, 1, 0.5])
        x = rng.choice(values, size=(1, 2, H, W), p=p / p.sum())
        x[0, 1] = rng.choice([-0.0, 0.0], size=(H, W))   # sums of zeros: the sign shows
        for pad, ceil_mode, count_include_pad, divisor_override in itertools.product(
                (0, 1), (False, True), (True, False), (None, 7)):
            params = dict(kernel_size=3, stride=(sh, 2), padding=pad, ceil_mode=ceil_mode,
                          count_include_pad=count_include_pad,
                          divisor_override=divisor_override)
            try:
                want = reference.avg_pool2d(x, **params)
            except ValueError:
                continue
            got = poolkit.avg_pool2d(x, **params)
            # NaNs made by arithmetic (inf - inf, NaN + NaN) may differ in sign and payload:
            # the compiler may swap the operands of an addition. Everything else: same bits.
            nan = np.isnan(want)
            np.testing.assert_array_equal(np.isnan(got), nan, err_msg=str((H, W, params)))
            assert got[~nan].tobytes() == want[~nan].tobytes(), (H, W, params)
            if sh == 2:   # the gather-form backward (finite gradients: exact sums)
                g = rng.choice(values[1:-2], size=want.shape)
                gx = poolkit.avg_pool2d_backward(g, x.shape, **params)
                gx_want = reference.avg_pool2d_backward(g, x.shape, **params)
                assert gx.tobytes() == gx_want.tobytes(), (H, W, params)


@pytest.mark.parametrize("dtype", DTYPES)
def test_2x2_mean_backward_rows_are_the_reference_bit_for_bit(dtype):
    # 2x2 windows, stride 2, no padding: each output row's shares computed and written to
    # its two input rows in one pass, 8 windows per block; odd sizes and ceil mode leave a
    # partial last window or columns and rows no window covers. Zeros of both signs.
    values = np.array([-1.5, -0.0, 0.0, 0.25, 3.0, 1e-30], dtype)
    rng = np.random.default_rng(3)
    for H, W in itertools.product(range(2, 8), range(14, 42, 3)):
        for ceil_mode, count_include_pad, divisor_override in itertools.product(
                (False, True), (True, False), (None, 3)):
            params = dict(kernel_size=2, stride=2, ceil_mode=ceil_mode,
                          count_include_pad=count_include_pad,
                          divisor_override=divisor_override)
            x_shape = (1, 2, H, W)
            oh = reference.avg_pool2d(np.zeros(x_shape, dtype), **params).shape
            g = rng.choice(values, size=oh)
            want = reference.avg_pool2d_backward(g, x_shape, **params)
            got = poolkit.avg_pool2d_backward(g, x_shape, **params)
            assert got.tobytes() == want.tobytes(), (H, W, params)
            out = np.full(x_shape, np.nan, dtype)   # every position written, none left stale
            poolkit.avg_pool2d_backward(g, x_shape, **params, out=out)
            assert out.tobytes() == want.tobytes(), (H, W, params)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_backward_on_2x2_tiles_is_the_scatter_bit_for_bit(dtype):
    # A gradient of (H // 2, W // 2) whose indices all lie in their own 2x2 tiles is
    # written in one pass (vector blocks of 8 floats or 4 doubles, the last one
    # overlapping); any index outside its tile sends the plane back to the scatter. Both
    # must give the reference's zeros-then-add: -0.0 gradients land as +0.0, positions no
    # tile covers (odd H or W) are +0.0, and wayward indices add where they point.
    for H, W in [(2, 2), (3, 5), (4, 16), (5, 17), (6, 30), (7, 33), (8, 70)]:
        x = _input((2, 3, H, W), dtype, H * W)
        _, idx = reference.max_pool2d(x, 2, 2, return_indices=True)
        g = _input(idx.shape, dtype, H + W)
        g.flat[::3] = -0.0
        cases = [idx]
        for n, c, oh, ow in [(0, 0, 0, 0), (1, 2, -1, -1), (0, 1, -1, 0)]:
            bad = idx.copy()   # one index outside its tile: last row, first or last column
            bad[n, c, oh, ow] = (bad[n, c, oh, ow] + 2 * W) % (H * W)
            cases.append(bad)
        for ix in cases:
            want = reference.max_pool2d_backward(g, ix, x.shape)
            got = poolkit.max_pool2d_backward(g, ix, x.shape)
            assert got.tobytes() == want.tobytes(), (H, W)
            out = np.full(x.shape, np.nan, dtype)
            poolkit.max_pool2d_backward(g, ix, x.shape, out=out)
            assert out.tobytes() == want.tobytes(), (H, W)
    # 3x3 stride-2 padding-1 windows on even planes also give (H // 2, W // 2) gradients;
    # their indices straddle the tiles and must go through the scatter.
    x = _input((1, 2, 12, 20), dtype, 7)
    _, idx = reference.max_pool2d(x, 3, 2, 1, return_indices=True)
    g = _input(idx.shape, dtype, 8)
    assert poolkit.max_pool2d_backward(g, idx, x.shape).tobytes() == \
        reference.max_pool2d_backward(g, idx, x.shape).tobytes()
