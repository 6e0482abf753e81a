"""Representation similarity against brute force (float64), invariances, identities and baselines."""

import itertools
import math

import numpy as np
import pytest
import torch

from lmech.errors import ConfigError
from lmech.measure.similarity import (
    cca_correlations,
    cknna,
    linear_cka,
    mean_squared_cca,
    mutual_knn,
    procrustes_distance,
    pwcca,
    rbf_cka,
    svcca,
)


@pytest.fixture
def reps():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(60, 7, generator=gen, dtype=torch.float64)
    y = torch.tanh(x @ torch.randn(7, 5, generator=gen, dtype=torch.float64)) + 0.3 * torch.randn(60, 5, generator=gen,
                                                                                                    dtype=torch.float64)
    return x, y, gen


def orthogonal(d, gen):
    q, r = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


def brute_hsic(k, l, unbiased):  # noqa: E741
    """Loops over index tuples: HSIC_b = tr(KHLH)/(n−1)² and the U-statistic of Song et al. (2012), eq. (5)."""
    n = len(k)
    if not unbiased:
        h = np.eye(n) - 1.0 / n
        return np.trace(k @ h @ l @ h) / (n - 1) ** 2
    kt, lt = k - np.diag(np.diag(k)), l - np.diag(np.diag(l))
    one = np.ones(n)
    return (np.trace(kt @ lt) + one @ kt @ one * (one @ lt @ one) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * one @ kt @ lt @ one) / (n * (n - 3))


@pytest.mark.parametrize("debiased", [False, True])
def test_linear_cka_equals_the_gram_matrix_formula(reps, debiased):
    x, y, _ = reps
    k, l = (x @ x.T).numpy(), (y @ y.T).numpy()  # noqa: E741 - uncentred: HSIC centres or is shift-invariant
    expect = brute_hsic(k, l, debiased) / math.sqrt(brute_hsic(k, k, debiased) * brute_hsic(l, l, debiased))
    assert linear_cka(x, y, debiased=debiased) == pytest.approx(expect, rel=1e-10)


def test_unbiased_hsic_is_a_u_statistic_on_tiny_inputs():
    """On n = 5 the formula equals the average over ordered 4-tuples of distinct indices of
    h(i,j,q,r) = k_ij l_ij + k_ij l_qr − 2 k_ij l_iq, the U-statistic's definition."""
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    k, l = x @ x.T, y @ y.T  # noqa: E741
    total, count = 0.0, 0
    for i, j, q, r in itertools.permutations(range(5), 4):
        total += k[i, j] * l[i, j] + k[i, j] * l[q, r] - 2 * k[i, j] * l[i, q]
        count += 1
    assert brute_hsic(k, l, True) == pytest.approx(total / count, rel=1e-10)


def test_cka_invariances_and_identity(reps):
    x, y, gen = reps
    q = orthogonal(7, gen)
    for debiased in (False, True):
        base = linear_cka(x, y, debiased=debiased)
        assert linear_cka(2.5 * x @ q + 1.0, y, debiased=debiased) == pytest.approx(base, rel=1e-10)
        assert linear_cka(x, x, debiased=debiased) == pytest.approx(1.0, rel=1e-12)
    assert rbf_cka(x, 3 * x @ q + 2) == pytest.approx(1.0, rel=1e-10)
    assert rbf_cka(2.5 * x @ q, y) == pytest.approx(rbf_cka(x, y), rel=1e-10)
    # not invariant to a general invertible map
    a = torch.randn(7, 7, generator=gen, dtype=torch.float64) + 3 * torch.eye(7, dtype=torch.float64)
    assert abs(linear_cka(x @ a, y) - linear_cka(x, y)) > 1e-3


def test_rbf_cka_matches_brute_force(reps):
    x, y, _ = reps
    grams = []
    for z in (x.numpy(), y.numpy()):
        d = np.sqrt(((z[:, None] - z[None]) ** 2).sum(-1))
        sigma = 0.5 * np.median(d[np.triu_indices(len(z), 1)])
        grams.append(np.exp(-d**2 / (2 * sigma**2)))
    k, l = grams  # noqa: E741
    for unbiased in (False, True):
        expect = brute_hsic(k, l, unbiased) / math.sqrt(brute_hsic(k, k, unbiased) * brute_hsic(l, l, unbiased))
        assert rbf_cka(x, y, sigma_frac=0.5, debiased=unbiased) == pytest.approx(expect, rel=1e-7)  # U-statistic cancels


def brute_knn(z, k):
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    s = z @ z.T
    np.fill_diagonal(s, -np.inf)
    return [set(np.argsort(-row)[:k]) for row in s]


def test_mutual_knn_matches_brute_force_and_the_random_baseline(reps):
    x, y, gen = reps
    nx, ny = brute_knn(x.numpy(), 5), brute_knn(y.numpy(), 5)
    expect = np.mean([len(a & b) / 5 for a, b in zip(nx, ny)])
    assert mutual_knn(x, y, 5) == pytest.approx(expect, abs=1e-12)
    assert mutual_knn(x, 2 * x @ orthogonal(7, gen), 5) == 1.0
    n, k = 2000, 10
    a, b = torch.randn(n, 16, generator=gen), torch.randn(n, 16, generator=gen)
    assert mutual_knn(a, b, k) == pytest.approx(k / (n - 1), rel=0.2)  # 0.005 expected; sd about 0.0005


def test_cknna_identity_and_brute_force(reps):
    x, y, _ = reps
    assert cknna(x, x, 5) == pytest.approx(1.0, rel=1e-12)
    xs, ys = (z.numpy() / np.linalg.norm(z.numpy(), axis=1, keepdims=True) for z in (x, y))
    n = len(xs)
    h = np.eye(n) - 1.0 / n
    kx, ky = h @ xs @ xs.T @ h, h @ ys @ ys.T @ h
    nx, ny = brute_knn(x.numpy(), 5), brute_knn(y.numpy(), 5)
    mask = np.array([[j in nx[i] and j in ny[i] for j in range(n)] for i in range(n)], dtype=float)
    mx = np.array([[j in nx[i] for j in range(n)] for i in range(n)], dtype=float)
    my = np.array([[j in ny[i] for j in range(n)] for i in range(n)], dtype=float)
    expect = (mask * kx * ky).sum() / math.sqrt((mx * kx * kx).sum() * (my * ky * ky).sum())
    assert cknna(x, y, 5) == pytest.approx(expect, rel=1e-10)


def test_cca_family_invariant_to_invertible_maps(reps):
    x, y, gen = reps
    a = torch.randn(7, 7, generator=gen, dtype=torch.float64) + 3 * torch.eye(7, dtype=torch.float64)
    torch.testing.assert_close(cca_correlations(x @ a + 4.0, y), cca_correlations(x, y))
    assert mean_squared_cca(x, x @ a) == pytest.approx(1.0, rel=1e-10)
    assert pwcca(x, x @ a) == pytest.approx(1.0, rel=1e-10)
    assert svcca(x, x @ orthogonal(7, gen)) == pytest.approx(1.0, rel=1e-10)
    assert 0 < mean_squared_cca(x, y) < 1 and 0 < pwcca(x, y) < 1 and 0 < svcca(x, y) < 1


def test_cca_against_the_covariance_definition(reps):
    """ρ² are the eigenvalues of Σxx⁻¹ Σxy Σyy⁻¹ Σyx (Hotelling 1936)."""
    x, y, _ = reps
    xc, yc = (z.numpy() - z.numpy().mean(0) for z in (x, y))
    sxx, syy, sxy = xc.T @ xc, yc.T @ yc, xc.T @ yc
    eig = np.sort(np.linalg.eigvals(np.linalg.solve(sxx, sxy) @ np.linalg.solve(syy, sxy.T)).real)[::-1][:5]
    np.testing.assert_allclose(cca_correlations(x, y).numpy() ** 2, eig, rtol=1e-9)


def test_procrustes_distance(reps):
    x, y, gen = reps
    assert procrustes_distance(x, 3 * x @ orthogonal(7, gen) - 1) == pytest.approx(0.0, abs=1e-6)
    xc, yc = (z.numpy() - z.numpy().mean(0) for z in (x, y))
    xc, yc = xc / np.linalg.norm(xc), np.pad(yc / np.linalg.norm(yc), ((0, 0), (0, 2)))
    u, _, vt = np.linalg.svd(yc.T @ xc)
    expect = np.linalg.norm(xc - yc @ (u @ vt))  # the optimal rotation of Y onto X (Schönemann 1966)
    assert procrustes_distance(x, y) == pytest.approx(expect, rel=1e-9)


@pytest.mark.parametrize(("call", "message"), [
    (lambda x, y: linear_cka(x, y[:-1]), "X has 60 rows, Y 59"),
    (lambda x, y: linear_cka(x[:3], y[:3], debiased=True), "at least 4 examples"),
    (lambda x, y: linear_cka(x.clone().index_fill_(0, torch.tensor([4]), math.nan), y), "row 4"),
    (lambda x, y: linear_cka(x[:, 0], y), "must be 2-D"),
    (lambda x, y: mutual_knn(x, y, 60), "k must be an integer in 1..n−1 = 59"),
    (lambda x, y: mean_squared_cca(x[:6], y[:6]), "more examples than features"),
    (lambda x, y: linear_cka(torch.ones(10, 3), y[:10]), "constant"),
    (lambda x, y: rbf_cka(x, y, sigma_frac=0.0), "sigma_frac"),
])
def test_bad_input_is_named(reps, call, message):
    x, y, _ = reps
    with pytest.raises(ConfigError, match=message):
        call(x, y)


def test_blocked_neighbour_search_equals_the_full_matrix(reps, monkeypatch):
    """With blocks of 7 rows (so diagonal, upper and transposed blocks all occur) the neighbours are exact."""
    import lmech.measure.similarity as similarity

    x, y, _ = reps
    monkeypatch.setattr(similarity, "CHUNK", 7)
    for z in (x, y):
        got = [set(row) for row in similarity._knn(z, 5).tolist()]
        assert got == brute_knn(z.numpy(), 5)
    assert similarity.mutual_knn(x, y, 5) == pytest.approx(np.mean([len(a & b) / 5 for a, b in zip(
        brute_knn(x.numpy(), 5), brute_knn(y.numpy(), 5))]), abs=1e-12)


@pytest.mark.parametrize(("n", "chunk", "k"), [
    (53, 8, 5),  # n not a multiple of the chunk: bands of 8 rows and a last one of 5
    (53, 64, 5),  # n smaller than one chunk: a single band
    (29, 7, 12),  # bands of 6 rows, fewer than k, and a last band whose rows are 5 wide
    (30, 10, 29),  # k = n − 1: every other row is a neighbour
    (700, 64, 10),  # eleven bands: after the first, candidates are found by thresholds
])
@pytest.mark.parametrize("numpy_kernels", [True, False])
def test_knn_equals_float64_brute_force(monkeypatch, n, chunk, k, numpy_kernels):
    """The banded float32 search gives float64 brute force's neighbour sets (cosine, itself excluded), with
    NumPy's kernels (the CPU default) and with torch's (other devices)."""
    import lmech.measure.similarity as similarity

    monkeypatch.setattr(similarity, "CHUNK", chunk)
    z = torch.randn(n, 16, generator=torch.Generator().manual_seed(n + chunk + k))
    got = similarity._knn(z, k, numpy_kernels=numpy_kernels)
    assert got.shape == (n, k) and got.dtype == torch.long
    assert [set(row) for row in got.tolist()] == brute_knn(z.double().numpy(), k)


@pytest.mark.parametrize("numpy_kernels", [True, False])
def test_knn_thresholds_when_neighbours_come_late(monkeypatch, numpy_kernels):
    """Each row's nearest neighbours lie in the last bands (the rows are a shuffled copy of the first half, with
    small noise), so later bands bring many candidates above the running thresholds, some rows dozens; the
    threshold path must run and still give brute force's sets, in float64 too."""
    import lmech.measure.similarity as similarity

    monkeypatch.setattr(similarity, "CHUNK", 50)
    calls, above = [], similarity._above

    def counted(*args):
        found = above(*args)
        calls.append(0 if found is None else len(found[0]))
        return found

    monkeypatch.setattr(similarity, "_above", counted)
    gen = torch.Generator().manual_seed(1)
    base = torch.randn(300, 8, generator=gen, dtype=torch.float64)
    z = torch.cat([base, base[torch.randperm(300, generator=gen)] + 1e-3 * torch.randn(300, 8, generator=gen,
                                                                                          dtype=torch.float64)])
    got = similarity._knn(z, 7, numpy_kernels=numpy_kernels)
    assert [set(row) for row in got.tolist()] == brute_knn(z.numpy(), 7)
    assert len(calls) >= 10 and max(calls) > 50


def test_half_precision_is_upcast_and_overflow_is_named(reps):
    x, y, _ = reps
    assert linear_cka(x.half(), y.half()) == pytest.approx(linear_cka(x, y), rel=1e-2)
    with pytest.raises(ConfigError, match="overflowed"):
        linear_cka(x.float() * 1e20, y.float())
    assert mutual_knn(x, y, np.int64(5)) == mutual_knn(x, y, 5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_knn_keeps_the_direction_of_rows_of_extreme_norm(dtype):
    """Cosine similarity ignores a row's length: rows of norm 1e-13 (below ``normalize``'s epsilon), rows whose
    squared entries underflow to 0 (1e-23 in float32, 1e-170 in float64) and rows whose squared norm overflows
    (3e20 in float32, 1e200 in float64) have the same neighbours as the unit rows beside them."""
    from lmech.measure.similarity import _knn

    base = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.3], [0.2, -1.0]], dtype=dtype)
    for scale in (1e-23, 1e-13, 3e20) if dtype == torch.float32 else (1e-170, 1e-13, 1e200):  # 1e-23: norm 0
        z = torch.cat([base, scale * base])  # row i + 5 points exactly where row i does
        got = _knn(z, 1).ravel().tolist()
        assert got == [i + 5 for i in range(5)] + list(range(5)), scale


def test_mutual_knn_memory_does_not_grow_as_n_k_squared(monkeypatch):
    """The intersections are counted CHUNK rows at a time from a membership mask (k = n − 1 with n = 600 took
    1.9 GB as an (n, k, k) comparison); values still match brute force."""
    import lmech.measure.similarity as similarity

    monkeypatch.setattr(similarity, "CHUNK", 64)
    gen = torch.Generator().manual_seed(3)
    x, y = torch.randn(300, 6, generator=gen, dtype=torch.float64), torch.randn(300, 6, generator=gen, dtype=torch.float64)
    for k in (1, 7, 299):
        nx, ny = brute_knn(x.numpy(), k), brute_knn(y.numpy(), k)
        assert mutual_knn(x, y, k) == pytest.approx(np.mean([len(a & b) / k for a, b in zip(nx, ny)]), abs=1e-12)
    assert mutual_knn(x, y, 299) == 1.0


def test_numpy_inputs_of_any_layout_and_byte_order(reps):
    x, y, _ = reps
    xa, ya = x.numpy(), y.numpy()
    expect = mutual_knn(x.flip(0), y.flip(0), 5)
    assert mutual_knn(xa[::-1], ya[::-1], 5) == expect  # negative strides
    assert mutual_knn(xa.astype(">f8"), ya, 5) == mutual_knn(x, y, 5)  # big-endian
    assert linear_cka(np.asfortranarray(xa), ya) == pytest.approx(linear_cka(x, y), rel=1e-12)
    with pytest.raises(ConfigError, match="X must hold real numbers, got an array of dtype <U1"):
        linear_cka(np.array([["a", "b"]] * 5), ya[:5])
    with pytest.raises(ConfigError, match="complex"):
        linear_cka(xa.astype(complex), ya)


def test_bands_shrink_for_large_n(monkeypatch):
    """With BAND_ENTRIES of 70 rows' worth, bands are 70 rows (not CHUNK = 1024) and the sets are unchanged."""
    import lmech.measure.similarity as similarity

    shapes, products = [], similarity._band_products

    def recorded(z, a, b, buffer):
        shapes.append(b - a)
        return products(z, a, b, buffer)

    monkeypatch.setattr(similarity, "_band_products", recorded)
    monkeypatch.setattr(similarity, "BAND_ENTRIES", 700 * 70)
    z = torch.randn(700, 12, generator=torch.Generator().manual_seed(5))
    got = similarity._knn(z, 6)
    assert shapes == [70] * 10
    assert [set(row) for row in got.tolist()] == brute_knn(z.double().numpy(), 6)


def test_bands_cover_the_rows_once():
    import lmech.measure.similarity as similarity

    for n in (1, 2, 63, 257, 1000, 10_000, 123_457):
        bands = similarity._bands(n)
        assert bands[0][0] == 0 and bands[-1][1] == n and all(b == a2 for (_, b), (a2, _) in zip(bands, bands[1:]))
        assert max(b - a for a, b in bands) <= similarity.CHUNK
    assert [b - a for a, b in similarity._bands(10_000)] == [1000] * 10


@pytest.mark.parametrize("shape", [(3, 70_000), (40, 30)])
@pytest.mark.parametrize("numpy_kernels", [True, False])
def test_above_finds_the_entries_over_each_lines_threshold_in_line_order(shape, numpy_kernels):
    """Down columns, the candidates come back in column order: by a radix sort of 16-bit keys while the block has
    at most 2^16 columns, by a general stable sort beyond (70,000 columns)."""
    import lmech.measure.similarity as similarity

    gen = torch.Generator().manual_seed(shape[1])
    block = torch.randn(shape, generator=gen)[:, 1:]  # a strided view, as the bands' blocks of columns are
    for by_row in (True, False):
        kth = torch.randn(block.shape[0 if by_row else 1], generator=gen) + 1.5
        mask = np.empty(block.numel(), dtype=bool) if numpy_kernels else None
        lines, positions, values = similarity._above(block, kth, by_row, mask, block.numel())
        lines_of = block if by_row else block.T
        expect = [(i, j) for i in range(lines_of.shape[0]) for j in (lines_of[i] > kth[i]).nonzero().ravel().tolist()]
        assert list(zip(lines.tolist(), positions.tolist())) == expect
        assert torch.equal(values, lines_of[lines, positions])
        assert similarity._above(block, kth, by_row, mask, len(lines) - 1) is None  # one more than allowed


def test_the_two_searches_side_by_side_equal_one_after_another(reps):
    """With two torch threads the X and Y searches run in two threads (BLAS and torch on one thread each there);
    the neighbour sets are those of the serial search, and the caller's thread counts are left as they were."""
    from threadpoolctl import threadpool_info

    import lmech.measure.similarity as similarity

    x, y, _ = reps
    blas = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        side_by_side = similarity._neighbour_sets(5, x, y, x)
        assert torch.get_num_threads() == 2
        torch.set_num_threads(1)
        serial = similarity._neighbour_sets(5, x, y, x)
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(a, b) for a, b in zip(side_by_side, serial)) and len(serial) == 3
    assert [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"] == blas
    assert [set(r) for r in serial[1].tolist()] == brute_knn(y.numpy(), 5)


@pytest.mark.parametrize("numpy_kernels", [True, False])
def test_too_many_candidates_fall_back_to_topk(monkeypatch, numpy_kernels):
    """The first band's rows point away from all the rest, so after it every later row's threshold is far below
    its true k-th best and nearly its whole next band passes: those bands are selected by topk instead, no merge
    takes more than CANDIDATES_PER_K · k candidates per line, and the sets are brute force's."""
    import lmech.measure.similarity as similarity

    monkeypatch.setattr(similarity, "CHUNK", 60)
    merged, merge = [], similarity._merge_top_k
    fell_back, above = [], similarity._above

    def recorded_merge(best_v, best_i, start, rows, values, indices):
        merged.append((len(rows), len(best_v) - start))
        return merge(best_v, best_i, start, rows, values, indices)

    def recorded_above(*args):
        found = above(*args)
        fell_back.append(found is None)
        return found

    monkeypatch.setattr(similarity, "_merge_top_k", recorded_merge)
    monkeypatch.setattr(similarity, "_above", recorded_above)
    gen = torch.Generator().manual_seed(4)
    z = torch.cat([-3 - torch.rand(60, 5, generator=gen), 3 + torch.randn(540, 5, generator=gen)])
    got = similarity._knn(z, 8, numpy_kernels=numpy_kernels)
    assert [set(row) for row in got.tolist()] == brute_knn(z.double().numpy(), 8)
    assert any(fell_back) and not all(fell_back)
    assert max(count for count, _ in merged) <= similarity.CANDIDATES_PER_K * 8 * 600


def test_calls_from_several_threads_leave_the_thread_counts_as_they_were(reps):
    """The BLAS thread count is the process's: concurrent calls take turns setting and restoring it. Threads
    started afterwards get torch's thread count as before."""
    import threading

    from threadpoolctl import threadpool_info

    x, y, _ = reps
    blas = lambda: [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]  # noqa: E731

    def fresh_threads_count():
        seen = []
        thread = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
        thread.start()
        thread.join()
        return seen[0]

    before, results = torch.get_num_threads(), []
    try:
        torch.set_num_threads(2)
        blas_before, fresh_before = blas(), fresh_threads_count()
        threads = [threading.Thread(target=lambda: results.append(mutual_knn(x, y, 5))) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert blas() == blas_before and fresh_threads_count() == fresh_before == 2
    finally:
        torch.set_num_threads(before)
    assert results == [mutual_knn(x, y, 5)] * 4


def test_a_representation_with_no_features_has_no_neighbours_by_angle():
    """Shape (n, 0): every row is all-zero, so its similarities are all 0 (a raw RuntimeError from the norm before);
    mutual kNN is a number in [0, 1], and CKNNA names the constant representation."""
    gen = np.random.default_rng(0)
    x, y = np.zeros((50, 0)), gen.standard_normal((50, 3))
    assert 0.0 <= mutual_knn(x, y, 5) <= 1.0
    with pytest.raises(ConfigError, match="constant over the examples"):
        cknna(x, y, 5)
