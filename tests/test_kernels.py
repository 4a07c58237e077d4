import random
from operator import itemgetter

import pytest

from paracnn import kernels as K


def test_dots_and_matvec():
    assert K.dots([1.0, 2.0], [(3.0, 4.0), (0.5, -1.0)]) == [11.0, -1.5]
    assert K.matvec([[1.0, 0.0], [2.0, 3.0]], [4.0, 5.0]) == [4.0, 23.0]


def test_chunks_and_rows_of():
    assert K.chunks((1, 2, 3, 4, 5, 6), 3) == [(1, 2, 3), (4, 5, 6)]
    assert K.rows_of([1, 2, 3, 4], 2) == [[1, 2], [3, 4]]


def test_add_into_slices_in_place():
    acc = [1.0, 1.0, 1.0, 1.0]
    K.add_into(acc, [2.0, 3.0], start=1)
    assert acc == [1.0, 3.0, 4.0, 1.0]


def test_window_table_with_padding_points_at_zero():
    table, oh, ow = K.window_table((1, 2, 2), (2, 2), (1, 1), (1, 1))
    assert (oh, ow) == (3, 3)
    # Top-left window: three padding cells and input[0].
    assert table[:4] == [4, 4, 4, 0]


def test_gather_of_one_index_is_still_a_tuple():
    assert K.gather([2])([5, 6, 7]) == (7,)
    assert K.gather([0, 2])([5, 6, 7]) == (5, 7)


def test_scatter_is_the_adjoint_of_gather():
    rng = random.Random(0)
    table, _, _ = K.window_table((2, 5, 4), (3, 2), (2, 1), (1, 0))
    n = 2 * 5 * 4
    scatter = K.Scatter(table, n)
    x = [rng.uniform(-1, 1) for _ in range(n)] + [0.0]
    v = [rng.uniform(-1, 1) for _ in table]
    gathered = itemgetter(*table)(x)
    # <gather(x), v> == <x, scatter(v)> for every x, v.
    lhs = sum(a * b for a, b in zip(gathered, v))
    rhs = sum(a * b for a, b in zip(x, scatter(v)))
    assert lhs == pytest.approx(rhs, rel=1e-12)


def test_scatter_gives_zero_to_inputs_nobody_reads():
    # stride 3 with kernel 1 reads only every third input
    table, _, _ = K.window_table((1, 1, 7), (1, 1), (1, 3))
    assert K.Scatter(table, 7)([1.0, 2.0, 3.0]) == [1.0, 0.0, 0.0, 2.0, 0.0, 0.0, 3.0]


def test_route_visits_only_nonzero_gradients():
    assert K.route(5, (4, 1, 1), [2.0, 0.0, 3.0]) == [0.0, 3.0, 0.0, 0.0, 2.0]


def test_conv_input_cols_matches_its_definition():
    rng = random.Random(1)
    filters = [[rng.uniform(-1, 1) for _ in range(6)] for _ in range(3)]
    dy = [rng.choice([0.0, rng.uniform(-1, 1)]) for _ in range(3 * 4)]
    dy[0:4] = [0.0, 0.0, 0.0, 0.0]        # a channel with no gradient at all
    dy[3] = dy[7] = dy[11] = 0.0           # a position that no channel feeds
    got = K.conv_input_cols(filters, dy, 4, 6)
    expected = [sum(dy[c * 4 + p] * filters[c][j] for c in range(3)) for p in range(4) for j in range(6)]
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert got[18:24] == [0.0] * 6


def test_sumprod_fallback_matches():
    assert K.sumprod([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]) == 32.0
