"""Representation similarity: CKA (linear, debiased, RBF), mutual nearest neighbours, CKNNA, the CCA family
and the orthogonal Procrustes distance.

Every function compares two representations of the *same* ``n`` inputs, ``X`` of shape ``(n, d1)`` and ``Y`` of
shape ``(n, d2)`` (torch tensors or NumPy arrays; rows are examples), and returns a Python float. Inputs are
validated first: different ``n``, fewer examples than the estimator needs, NaN or infinite entries raise
:class:`~lmech.errors.ConfigError` naming the problem. Computation runs in the inputs' floating dtype (float32
stays float32 for speed; integers become float64); pass float64 for reference values.

Conventions:

* *Centring* ``H = I − 11ᵀ/n``; linear CKA centres the features, which equals centring the Gram matrices.
* *Scores* (CKA, mutual kNN, CKNNA, CCA) are 1 for a representation compared with itself; the Procrustes
  *distance* is 0.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import Tensor

from ..errors import ConfigError

__all__ = ["cca_correlations", "cknna", "linear_cka", "mean_squared_cca", "mutual_knn", "procrustes_distance",
           "pwcca", "rbf_cka", "svcca"]

CHUNK = 1024  # rows of the n × n similarity matrix held at once by the nearest-neighbour measures
BAND_ENTRIES = 2**25  # ... unless n is so large that CHUNK rows would exceed this many entries (then ≥ 64 rows)
CANDIDATES_PER_K = 4  # a band's threshold selection stops at this many candidates per line per neighbour (_knn)


def _as_tensor(name: str, a) -> Tensor:
    if isinstance(a, Tensor):
        t = a
    else:
        arr = np.asarray(a)
        if arr.dtype.kind not in "biufc":
            raise ConfigError(f"{name} must hold real numbers, got an array of dtype {arr.dtype}")
        # torch takes neither negative strides nor non-native byte order: copy to a native, C-ordered array
        t = torch.as_tensor(np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("=")))
    if t.ndim != 2:
        raise ConfigError(f"{name} must be 2-D (examples × features), got shape {tuple(t.shape)}; "
                          "flatten each example's features first (e.g. x.reshape(len(x), -1))")
    if t.is_complex():
        raise ConfigError(f"{name} is complex; pass real features (e.g. concatenate real and imaginary parts)")
    if not t.is_floating_point():
        t = t.to(torch.float64)
    elif t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()  # sums of squares overflow half precision
    t = t.detach()
    bad = ~torch.isfinite(t)
    if bool(bad.any()):
        row, col = (int(v) for v in bad.nonzero()[0])
        raise ConfigError(f"{name} has a non-finite entry ({float(t[row, col])}) at row {row}, column {col}; "
                          "drop that example or fix the representation")
    return t


def _pair(x, y, min_n: int, estimator: str) -> tuple[Tensor, Tensor]:
    x, y = _as_tensor("X", x), _as_tensor("Y", y)
    if len(x) != len(y):
        raise ConfigError(f"X and Y must hold the same examples in the same order: X has {len(x)} rows, Y {len(y)}")
    if len(x) < min_n:
        raise ConfigError(f"{estimator} needs at least {min_n} examples, got {len(x)}")
    dtype = torch.promote_types(x.dtype, y.dtype)
    return x.to(dtype), y.to(dtype)


def _centre(x: Tensor) -> Tensor:
    return x - x.mean(dim=0, keepdim=True)


def _unbiased_dot(xty_sq: Tensor, diag_x: Tensor, diag_y: Tensor, n: int) -> Tensor:
    """``n(n−3)·HSIC_u`` for linear kernels of centred features, from ``‖YᵀX‖²_F = tr(KL)`` and the Grams'
    diagonals (Song et al. 2012, eq. (5), with ``1ᵀK1 = 0`` after centring)."""
    return (xty_sq - n / (n - 2) * (diag_x @ diag_y)
            + diag_x.sum() * diag_y.sum() / ((n - 1) * (n - 2)))


def linear_cka(x, y, *, debiased: bool = False) -> float:
    """Linear centred kernel alignment.

    .. math::

        \\mathrm{CKA}(X, Y) = \\frac{\\mathrm{HSIC}(K, L)}{\\sqrt{\\mathrm{HSIC}(K, K)\\,\\mathrm{HSIC}(L, L)}}
        = \\frac{\\|\\tilde Y^\\top \\tilde X\\|_F^2}{\\|\\tilde X^\\top \\tilde X\\|_F\\, \\|\\tilde Y^\\top \\tilde Y\\|_F},
        \\qquad K = XX^\\top,\\ L = YY^\\top,

    with ``X̃, Ỹ`` the column-centred features (the feature-space form costs ``O(n d²)``, not ``O(n²)``).
    ``debiased=True`` replaces each HSIC by the unbiased estimator of Song et al. (2012),
    ``[tr(K̃L̃) + 1ᵀK̃1·1ᵀL̃1/((n−1)(n−2)) − 2·1ᵀK̃L̃1/(n−2)] / (n(n−3))`` with ``K̃, L̃`` the Grams with zeroed
    diagonals, as Kornblith et al. do; it can be slightly negative for unrelated representations.

    Args:
        x: shape ``(n, d1)``; y: shape ``(n, d2)``.
        debiased: use the unbiased HSIC estimator.

    Returns:
        CKA in ``[0, 1]`` (biased) — 1 for ``Y = c·X·Q`` with ``Q`` orthogonal, ``c ≠ 0``.

    Raises:
        ConfigError: different ``n``; ``n < 2`` (``n < 4`` debiased); non-finite entries; a representation
            that is constant over the examples (its HSIC with itself is 0).

    Source:
        Kornblith, Norouzi, Lee, Hinton (2019), arXiv:1905.00414, eqs. (3)-(4) and §3; Song, Smola, Gretton,
        Bedo, Borgwardt (2012), JMLR 13, eq. (5).

    >>> x = torch.randn(50, 8, dtype=torch.float64)
    >>> round(linear_cka(x, 3 * x @ torch.linalg.qr(torch.randn(8, 8, dtype=torch.float64))[0]), 12)
    1.0
    """
    x, y = _pair(x, y, 4 if debiased else 2, "debiased linear CKA (unbiased HSIC)" if debiased else "linear CKA")
    n = len(x)
    x, y = _centre(x), _centre(y)
    xty = (y.T @ x).square().sum()
    xtx = (x.T @ x).square().sum()
    yty = (y.T @ y).square().sum()
    if debiased:
        dx, dy = x.square().sum(1), y.square().sum(1)
        xty, xtx, yty = _unbiased_dot(xty, dx, dy, n), _unbiased_dot(xtx, dx, dx, n), _unbiased_dot(yty, dy, dy, n)
    return _ratio(xty, xtx, yty)


def _ratio(xy: Tensor, xx: Tensor, yy: Tensor) -> float:
    xy, xx, yy = float(xy), float(xx), float(yy)
    if not all(math.isfinite(v) for v in (xy, xx, yy)):
        raise ConfigError("a sum of squares overflowed the inputs' dtype (features too large); pass float64 or "
                          "rescale the representations")
    if not (xx > 0 and yy > 0):
        raise ConfigError("a representation is constant over the examples (its HSIC with itself is "
                          f"{min(xx, yy):.3g}), so CKA is undefined; drop constant features or use more examples")
    return xy / math.sqrt(xx * yy)


def _hsic_from_grams(k: Tensor, l: Tensor, debiased: bool) -> Tensor:  # noqa: E741 - the papers' L
    n = len(k)
    if debiased:
        k, l = k - torch.diag(torch.diag(k)), l - torch.diag(torch.diag(l))  # noqa: E741
        k1, l1 = k.sum(1), l.sum(1)
        return ((k * l).sum() + k1.sum() * l1.sum() / ((n - 1) * (n - 2)) - 2 / (n - 2) * (k1 @ l1)) / (n * (n - 3))
    kc = k - k.mean(0, keepdim=True) - k.mean(1, keepdim=True) + k.mean()
    return (kc * l).sum() / (n - 1) ** 2


def _median(values: Tensor) -> float:
    """The median as NumPy defines it (the mean of the two middle values for an even count)."""
    m = values.numel()
    lo = float(values.kthvalue((m + 1) // 2).values)
    return lo if m % 2 else 0.5 * (lo + float(values.kthvalue(m // 2 + 1).values))


def rbf_cka(x, y, *, sigma_frac: float = 0.8, debiased: bool = False) -> float:
    """CKA with Gaussian (RBF) kernels ``K_ij = exp(−‖x_i − x_j‖² / (2σ²))``, ``σ = sigma_frac ×`` the median
    pairwise distance of each representation (Kornblith et al. 2019, §3, who use fractions 0.2–0.8).

    Forms the two ``n × n`` kernels: memory and time ``O(n²)`` (``n = 10,000`` takes 1.6 GB in float64).

    Args:
        x: shape ``(n, d1)``; y: shape ``(n, d2)``.
        sigma_frac: bandwidth as a fraction of the median pairwise distance, > 0.
        debiased: use the unbiased HSIC estimator.

    Returns:
        RBF CKA (1 for ``Y = c·X·Q + b``, ``Q`` orthogonal: the bandwidths follow the scale).

    Raises:
        ConfigError: as :func:`linear_cka`, a non-positive ``sigma_frac``, or a median distance of 0.

    Source:
        Kornblith, Norouzi, Lee, Hinton (2019), arXiv:1905.00414, §3.
    """
    if not (math.isfinite(sigma_frac) and sigma_frac > 0):
        raise ConfigError(f"sigma_frac must be finite and > 0, got {sigma_frac!r}")
    x, y = _pair(x, y, 4 if debiased else 2, "debiased RBF CKA" if debiased else "RBF CKA")
    grams = []
    for name, z in (("X", x), ("Y", y)):
        sq = torch.cdist(z, z, compute_mode="donot_use_mm_for_euclid_dist").square()
        upper = sq[torch.triu_indices(len(z), len(z), offset=1, device=z.device).unbind()]
        median = math.sqrt(_median(upper))
        if median == 0:
            raise ConfigError(f"{name}: the median pairwise distance is 0 (more than half the examples coincide); "
                              "RBF CKA's bandwidth is undefined")
        grams.append(torch.exp(-sq / (2 * (sigma_frac * median) ** 2)))
    k, l = grams  # noqa: E741
    return _ratio(_hsic_from_grams(k, l, debiased), _hsic_from_grams(k, k, debiased), _hsic_from_grams(l, l, debiased))


def _unit_rows(z: Tensor) -> Tensor:
    """Rows scaled to unit length (cosine similarity is then a dot product); all-zero rows stay zero, so their
    similarity to every row is 0. If any row's norm lies far from 1 (below ``1e-10`` or above ``1e15`` in float32,
    ``1e-100`` and ``1e100`` in float64, or 0, which a nonzero row's norm underflows to), every row is first
    divided by its largest magnitude, so that rows below ``normalize``'s epsilon or above float32's square-root
    range (about 1.8e19) keep their direction."""
    if z.shape[1] == 0:  # no features: every row is all-zero
        return z
    norm = torch.linalg.vector_norm(z, dim=1, keepdim=True)
    low, high = (1e-100, 1e100) if z.dtype == torch.float64 else (1e-10, 1e15)
    if bool(((norm < low) | (norm > high)).any()):
        scale = torch.linalg.vector_norm(z, ord=math.inf, dim=1, keepdim=True)
        z = z / torch.where(scale > 0, scale, 1)  # a nonzero row's norm is now at least 1
        norm = torch.linalg.vector_norm(z, dim=1, keepdim=True)
    return z / torch.where(norm > 0, norm, 1)


def _bands(n: int) -> list[tuple[int, int]]:
    """The row bands ``[a, b)`` of the neighbour search: ``r = ⌈n / ⌈n/c⌉⌉ ≤ c`` rows each (the last one
    shorter), where ``c`` is :data:`CHUNK`, or fewer, at least 64, if ``CHUNK · n`` exceeds :data:`BAND_ENTRIES`."""
    rows = min(CHUNK, max(64, BAND_ENTRIES // n))
    step = math.ceil(n / math.ceil(n / rows))
    return [(a, min(a + step, n)) for a in range(0, n, step)]


def _band_products(z: Tensor, a: int, b: int, buffer) -> Tensor:
    """``z[a:b] @ z[a:].T`` into ``buffer``: by NumPy's BLAS (OpenBLAS) if ``buffer`` is a NumPy array (CPU),
    the diagonal block ``z[a:b] @ z[a:b].T`` as a symmetric rank-k update (``syrk``, which NumPy calls for a
    product with its own transpose: half the products); else by ``torch.mm``."""
    rows, cols = b - a, len(z) - a
    if isinstance(buffer, np.ndarray):
        out = buffer[:rows * cols].reshape(rows, cols)
        zn = z.numpy()
        np.matmul(zn[a:b], zn[a:b].T, out=out[:, :rows])
        np.matmul(zn[a:b], zn[b:].T, out=out[:, rows:])
        return torch.from_numpy(out)
    return torch.mm(z[a:b], z[a:].T, out=buffer[:rows * cols].view(rows, cols))


def _merge_top_k(best_v: Tensor, best_i: Tensor, start: int, rows: Tensor, values: Tensor, indices: Tensor) -> None:
    """Fold candidates ``(rows[c], values[c], indices[c])`` (``rows`` relative to ``start``, in ascending order) into
    the running top-``k`` ``best_v, best_i`` of rows ``start …``: the ``k`` values of each row that has candidates
    and its candidates are laid side by side in a ``-inf``-padded matrix as wide as the most candidates a row has,
    and ``topk`` picks."""
    k = best_v.shape[1]
    touched, counts = torch.unique_consecutive(rows, return_counts=True)
    line = torch.repeat_interleave(torch.arange(len(touched), device=rows.device), counts)
    slot = k + torch.arange(len(rows), device=rows.device) - (counts.cumsum(0) - counts)[line]
    v = torch.full((len(touched), k + int(counts.max())), -math.inf, dtype=best_v.dtype, device=best_v.device)
    i = torch.zeros(v.shape, dtype=torch.long, device=best_v.device)
    touched += start
    v[:, :k], i[:, :k] = best_v[touched], best_i[touched]
    v[line, slot], i[line, slot] = values, indices
    top = v.topk(k, dim=1)
    best_v[touched], best_i[touched] = top.values, i.gather(1, top.indices)


def _above(block: Tensor, kth: Tensor, by_row: bool, mask_buffer, limit: int) -> tuple[Tensor, Tensor, Tensor] | None:
    """The entries of ``block`` above their line's threshold ``kth``, where the lines are the rows of ``block`` if
    ``by_row``, else its columns: ``(line, position along the line, value)``, in order of line; ``None`` if there
    are more than ``limit`` (they are counted before they are gathered). With a NumPy
    ``mask_buffer`` (CPU) by NumPy, whose comparison and ``flatnonzero`` run 3-5× faster here than torch's ``gt``
    and ``nonzero``, and whose stable sort of 16-bit keys (the column order) is a radix sort; else by torch."""
    if mask_buffer is None:
        mask = block > (kth[:, None] if by_row else kth[None, :])
        if int(mask.sum()) > limit:
            return None
        r, c = mask.nonzero().unbind(1)
        if not by_row:
            order = c.argsort(stable=True)
            r, c = c[order], r[order]
        return r, c, block[r, c] if by_row else block[c, r]
    values = block.numpy()
    mask = mask_buffer[:block.numel()].reshape(block.shape)
    np.greater(values, kth.numpy()[:, None] if by_row else kth.numpy()[None, :], out=mask)
    if np.count_nonzero(mask) > limit:
        return None
    r, c = np.divmod(np.flatnonzero(mask), block.shape[1])
    found = values[r, c]  # (a block of columns is a strided view: no flat index into it)
    if not by_row:  # found row by row of the block: put them in order of the column they belong to
        order = np.argsort(c.astype(np.uint16) if block.shape[1] <= 2**16 else c, kind="stable")
        r, c, found = c[order], r[order], found[order]
    return torch.from_numpy(r), torch.from_numpy(c), torch.from_numpy(found)


def _update_top_k(best_v: Tensor, best_i: Tensor, start: int, block: Tensor, offset: int, *, by_row: bool,
                  mask_buffer) -> None:
    """Update rows ``start …`` of the running top-``k`` from a block of similarities: along each row of ``block``
    (``by_row``) or down each column, line ``r`` of the block holding row ``start + r``'s similarities to rows
    ``offset …``. Only entries above a row's current ``k``-th best can enter its top ``k``; they are found by one
    comparison over the block, so the selection costs about a pass over it rather than a ``topk`` of every line
    (down columns, a strided one). A ``topk`` of every line selects instead until every row concerned has ``k``
    values, and where more than :data:`CANDIDATES_PER_K` ``· k`` candidates per line pass the thresholds (as when
    ``k`` is large or the first rows are unlike the rest), which bounds the candidates' memory."""
    k = best_v.shape[1]
    n_lines = block.shape[0 if by_row else 1]
    end = start + n_lines
    kth = best_v[start:end, k - 1]
    if not torch.isinf(kth).any():
        found = _above(block, kth, by_row, mask_buffer, CANDIDATES_PER_K * k * n_lines)
        if found is not None:
            rows, indices, values = found
            if len(rows):
                _merge_top_k(best_v[:end], best_i[:end], start, rows, values, indices + offset)
            return
    lines = block if by_row else block.T.contiguous()  # topk along strided columns is 2-3× slower here
    v, i = lines.topk(min(k, lines.shape[1]), dim=1)
    rows = torch.arange(len(v), device=v.device).repeat_interleave(v.shape[1])
    _merge_top_k(best_v[:end], best_i[:end], start, rows, v.reshape(-1), i.reshape(-1) + offset)


def _knn(z: Tensor, k: int, *, numpy_kernels: bool | None = None) -> Tensor:
    """Indices of each row's ``k`` nearest rows by cosine similarity (itself excluded), shape ``(n, k)``.

    The similarity matrix is symmetric, so only its part on and above the diagonal is formed, which halves the
    ``O(n² d)`` products of the plain row-by-row scan. It is formed one band of rows ``[a, b)`` at a time
    (:func:`_bands`; one reused buffer as large as the largest band, with a boolean mask of the same size on the
    CPU): the band's similarities to rows ``a … n−1``, which update the running top-``k`` of the band's rows along
    each row and of rows ``b … n−1`` down each column (:func:`_update_top_k`). On the CPU the products go to
    NumPy's BLAS with the thread count the caller set (:func:`_neighbour_sets`); ``numpy_kernels=False`` keeps a
    CPU search in torch (as on other devices; used by the tests).

    Cost at n = 10,000, d = 1,024, float32, one core of this project's AMD test machine: the products take about
    1.5 s, the rest (selection, normalising) about 0.45 s. ``mutual_knn``, with its two searches side by side on
    two cores, takes about 2.1 s there, where the products alone take about 1.5 s
    (``benchmarks/bench_similarity.py``).
    """
    z = _unit_rows(z.detach()).contiguous()
    n = len(z)
    best_v = torch.full((n, k), -math.inf, dtype=z.dtype, device=z.device)
    best_i = torch.zeros((n, k), dtype=torch.long, device=z.device)
    bands = _bands(n)
    size = max((b - a) * (n - a) for a, b in bands)
    if z.device.type == "cpu" if numpy_kernels is None else numpy_kernels:
        buffer, mask_buffer = np.empty(size, dtype=z.numpy().dtype), np.empty(size, dtype=bool)
    else:
        buffer, mask_buffer = torch.empty(size, dtype=z.dtype, device=z.device), None
    for a, b in bands:
        sims = _band_products(z, a, b, buffer)
        sims.fill_diagonal_(-math.inf)  # itself
        _update_top_k(best_v, best_i, a, sims, a, by_row=True, mask_buffer=mask_buffer)
        if b < n:
            _update_top_k(best_v, best_i, b, sims[:, b - a:], a, by_row=False, mask_buffer=mask_buffer)
    return best_i


_BLAS_LIMITS = threading.Lock()  # the BLAS thread count is the process's: calls that set it take turns


def _neighbour_sets(k: int, *zs: Tensor) -> list[Tensor]:
    """:func:`_knn` of each representation. On the CPU with ``t ≥ 2`` torch threads, the searches run side by
    side in ``min(len(zs), t)`` threads, each BLAS call on ``t // min(len(zs), t)`` threads: the products of two
    searches then fill both cores while one search's selection (single-threaded NumPy) would leave one idle. On
    one thread, or another device, one after another. The BLAS thread count belongs to the whole process, so
    calls from several threads of the caller's take turns (and restore it in turn)."""
    if any(z.device.type != "cpu" for z in zs):
        return [_knn(z, k) for z in zs]
    threads = torch.get_num_threads()
    side_by_side = min(len(zs), threads)
    with _BLAS_LIMITS, threadpool_limits(max(1, threads // side_by_side), "blas"):
        if side_by_side < 2:
            return [_knn(z, k) for z in zs]
        with ThreadPoolExecutor(side_by_side) as pool:
            return list(pool.map(lambda z: _knn(z, k), zs))


def _check_k(k: int, n: int) -> None:
    if not (isinstance(k, (int, np.integer)) and not isinstance(k, bool) and 1 <= k <= n - 1):
        raise ConfigError(f"k must be an integer in 1..n−1 = {n - 1}, got {k!r}")


def mutual_knn(x, y, k: int = 10) -> float:
    """Mutual nearest-neighbour alignment: the mean fraction of each example's ``k`` nearest neighbours
    (cosine similarity, itself excluded) in ``X`` that are also among its ``k`` nearest in ``Y``.

    .. math::  m_{NN}(X, Y) = \\frac{1}{n} \\sum_i \\frac{|N_k^X(i) \\cap N_k^Y(i)|}{k}

    Unrelated representations score about ``k/(n − 1)`` (random neighbour sets). An all-zero row has
    cosine similarity 0 to every row. The similarity rows are formed a band at a time (:data:`CHUNK` rows, fewer
    once a band would pass :data:`BAND_ENTRIES` entries), so memory is ``O(min(CHUNK · n, BAND_ENTRIES + 64 n)
    + n k)`` per search (the X and Y searches run side by side on a CPU with two or more torch threads, so twice
    that there); time ``O(n² (d1 + d2))``.

    Args:
        x: shape ``(n, d1)``; y: shape ``(n, d2)``.
        k: neighbours, ``1 ≤ k ≤ n − 1``.

    Returns:
        Alignment in ``[0, 1]``.

    Raises:
        ConfigError: different ``n``, ``n < 2``, ``k`` out of range, non-finite entries.

    Source:
        Huh, Cheung, Wang, Isola (2024), "The Platonic Representation Hypothesis", arXiv:2405.07987, §2 and
        App. A.
    """
    x, y = _pair(x, y, 2, "mutual kNN")
    _check_k(k, len(x))
    nx, ny = _neighbour_sets(k, x, y)
    n, hits = len(x), 0
    for a in range(0, n, CHUNK):  # |N_X(i) ∩ N_Y(i)| from a (CHUNK, n) membership mask of N_X
        rows = slice(a, min(a + CHUNK, n))
        member = torch.zeros(rows.stop - a, n, dtype=torch.bool, device=nx.device).scatter_(1, nx[rows], True)
        hits += int(member.gather(1, ny[rows]).sum())
    return hits / (n * k)


def cknna(x, y, k: int = 10) -> float:
    """Centred kernel nearest-neighbour alignment: CKA with linear kernels of the L2-normalised features,
    restricted to pairs that are mutual ``k``-nearest neighbours in both spaces.

    .. math::

        \\mathrm{CKNNA} = \\frac{\\sum_{ij} \\alpha_{ij} \\bar K_{ij} \\bar L_{ij}}
        {\\sqrt{\\sum_{ij} \\alpha^K_{ij} \\bar K_{ij}^2 \\; \\sum_{ij} \\alpha^L_{ij} \\bar L_{ij}^2}}, \\qquad
        \\alpha_{ij} = [j \\in N_k^X(i)]\\,[j \\in N_k^Y(i)],

    ``K̄ = HKH``, ``L̄ = HLH``, and ``α^K, α^L`` the masks of each representation with itself (so a
    representation compared with itself scores 1). Forms ``n × n`` kernels: ``O(n²)`` memory.

    This is the paper's formula: the kernels are centred first, then masked. The authors' released code
    (``platonic-rep``, ``metrics.py``) masks first and then takes the unbiased HSIC estimator; on correlated
    representations its values came out about 5% lower than these (0.2885 against 0.3029 in one comparison).

    Args:
        x: shape ``(n, d1)``; y: shape ``(n, d2)``.
        k: neighbours, ``1 ≤ k ≤ n − 1``.

    Returns:
        CKNNA in ``[−1, 1]``.

    Raises:
        ConfigError: as :func:`mutual_knn`, or a zero denominator (constant representation).

    Source:
        Huh, Cheung, Wang, Isola (2024), arXiv:2405.07987, App. A (eq. (4)).
    """
    x, y = _pair(x, y, 3, "CKNNA")
    _check_k(k, len(x))
    n = len(x)
    grams, masks = [], []
    h = torch.eye(n, dtype=x.dtype, device=x.device) - 1.0 / n
    for z, neighbours in zip((x, y), _neighbour_sets(k, x, y)):
        zn = _unit_rows(z)
        grams.append(h @ (zn @ zn.T) @ h)
        masks.append(torch.zeros(n, n, dtype=torch.bool, device=x.device).scatter_(1, neighbours, True))
    (kx, ky), (mx, my) = grams, masks
    both = (mx & my).to(x.dtype)
    return _ratio((both * kx * ky).sum(), (mx.to(x.dtype) * kx * kx).sum(), (my.to(x.dtype) * ky * ky).sum())


def _orthonormal_basis(z: Tensor, name: str) -> Tensor:
    """An orthonormal basis of the centred columns' span, shape ``(n, rank)``."""
    u, s, _ = torch.linalg.svd(_centre(z), full_matrices=False)
    rank = int((s > s[0] * max(z.shape) * torch.finfo(z.dtype).eps).sum()) if s.numel() and s[0] > 0 else 0
    if rank == 0:
        raise ConfigError(f"{name} is constant over the examples; canonical correlations are undefined")
    return u[:, :rank]


def cca_correlations(x, y) -> Tensor:
    """Canonical correlations ``ρ_1 ≥ ρ_2 ≥ …`` of the centred representations: the singular values of
    ``Q_Xᵀ Q_Y`` with ``Q`` orthonormal bases of the column spaces (Björck & Golub 1973), shape
    ``(min(rank X, rank Y),)``.

    Raises:
        ConfigError: different ``n``, ``n ≤ max(d1, d2)`` (every correlation would be 1: the spans fill the
            centred space), a constant representation, non-finite entries.
    """
    x, y = _pair(x, y, 2, "CCA")
    if len(x) <= max(x.shape[1], y.shape[1]):
        raise ConfigError(f"CCA needs more examples than features (n = {len(x)}, d1 = {x.shape[1]}, "
                          f"d2 = {y.shape[1]}); otherwise every canonical correlation is 1 — use more examples or "
                          "reduce the features first (svcca does)")
    qx, qy = _orthonormal_basis(x, "X"), _orthonormal_basis(y, "Y")
    return torch.linalg.svdvals(qx.T @ qy).clamp(0.0, 1.0)


def mean_squared_cca(x, y) -> float:
    """``R²_CCA = Σ_i ρ_i² / min(d1, d2)``, the mean squared canonical correlation (Kornblith et al. 2019,
    eq. (11)); invariant to invertible linear maps of either representation. Errors as :func:`cca_correlations`."""
    rho = cca_correlations(x, y)
    return float(rho.square().sum() / len(rho))


def svcca(x, y, *, keep: float = 0.99) -> float:
    """SVCCA: keep the top singular directions of each centred representation that explain ``keep`` of its
    variance, then the mean canonical correlation between the two reduced representations.

    Args:
        x: shape ``(n, d1)``; y: shape ``(n, d2)``.
        keep: fraction of variance kept, in ``(0, 1]``.

    Returns:
        Mean canonical correlation in ``[0, 1]``.

    Raises:
        ConfigError: ``keep`` out of range, or as :func:`cca_correlations` for the reduced representations.

    Source:
        Raghu, Gilmer, Yosinski, Sohl-Dickstein (2017), arXiv:1706.05806, §2.
    """
    if not 0 < keep <= 1:
        raise ConfigError(f"keep must be in (0, 1], got {keep!r}")
    x, y = _pair(x, y, 2, "SVCCA")
    reduced = []
    for z in (x, y):
        u, s, _ = torch.linalg.svd(_centre(z), full_matrices=False)
        share = torch.cumsum(s.square(), 0) / s.square().sum()
        r = int(torch.searchsorted(share, torch.tensor(keep, dtype=share.dtype) - 1e-12)) + 1
        reduced.append(u[:, :r] * s[:r])
    return float(cca_correlations(*reduced).mean())


def pwcca(x, y) -> float:
    """Projection-weighted CCA: canonical correlations averaged with weights ``α_i ∝ Σ_j |⟨h_i, x_j⟩|``, how
    much of ``X``'s neurons (centred columns ``x_j``) each canonical variate ``h_i`` of ``X`` accounts for.

    Not symmetric (weights come from ``X``); 1 for a representation compared with itself or with any
    invertible linear map of it.

    Raises:
        ConfigError: as :func:`cca_correlations`.

    Source:
        Morcos, Raghu, Bengio (2018), arXiv:1806.05759, §2.2, eq. (1).
    """
    x, y = _pair(x, y, 2, "PWCCA")
    rho = cca_correlations(x, y)
    qx, qy = _orthonormal_basis(x, "X"), _orthonormal_basis(y, "Y")
    u, _, _ = torch.linalg.svd(qx.T @ qy, full_matrices=False)
    variates = qx @ u[:, :len(rho)]  # canonical variates of X, shape (n, r), unit norm
    weights = (variates.T @ _centre(x)).abs().sum(1)
    return float((weights * rho).sum() / weights.sum())


def procrustes_distance(x, y) -> float:
    """Orthogonal Procrustes distance between the centred, unit-Frobenius-norm representations.

    .. math::  d(X, Y) = \\min_{Q^\\top Q = I} \\|\\hat X - \\hat Y Q\\|_F = \\sqrt{2 - 2\\|\\hat X^\\top \\hat Y\\|_*}

    (``‖·‖_*`` the nuclear norm; for ``d1 ≠ d2`` the narrower one is zero-padded). A metric on shapes: 0 for
    ``Y = c·X·Q + b``, at most √2.

    Raises:
        ConfigError: different ``n``, ``n < 2``, a constant representation, non-finite entries.

    Source:
        Ding, Denain, Steinhardt (2021), arXiv:2108.01661, §2; Williams, Kunz, Kornblith, Linderman (2021),
        arXiv:2110.14739, eq. (3).
    """
    x, y = _pair(x, y, 2, "Procrustes distance")
    x, y = _centre(x), _centre(y)
    nx, ny = torch.linalg.matrix_norm(x), torch.linalg.matrix_norm(y)
    if not (nx > 0 and ny > 0):
        raise ConfigError("a representation is constant over the examples; the Procrustes distance is undefined")
    nuclear = torch.linalg.matrix_norm((x / nx).T @ (y / ny), ord="nuc")
    return math.sqrt(max(0.0, 2.0 - 2.0 * float(nuclear)))
