"""Single neurons across networks: activation correlation, best matches, universal neurons, class selectivity.

A *neuron* here is one column of an activation matrix: ``A`` of shape ``(n, d)`` holds ``d`` neurons' activations
on ``n`` inputs (rows are examples, the same examples in the same order for every model compared). Two neurons
are matched by the Pearson correlation of their activations over the examples (Li, Yosinski, Clune, Lipson,
Hopcroft 2016, "Convergent learning", arXiv:1511.07543, §2; Gurnee et al. 2024, arXiv:2401.12181, §2.1; Dravid,
Gandelsman, Efros, Shocher 2023, "Rosetta Neurons", arXiv:2306.09346).

*Dead or constant neurons.* A neuron whose activation is the same on every example (e.g. a ReLU that never fires
on these inputs) has zero variance, so its Pearson correlation with anything is undefined. Such a neuron is given
``NaN`` correlations (its row or column of the matrix), it **cannot be matched**: it has no best match (``NaN``),
it is nobody's best match, and it is never universal. :func:`constant_neurons` says which neurons these are;
callers should report how many there were.

Inputs may be torch tensors or NumPy arrays; results are float64 torch tensors (correlations of float32
activations are computed in float64, which costs nothing at these sizes).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError

__all__ = ["activation_correlation", "best_match", "best_match_correlations", "class_selectivity",
           "constant_neurons", "universal_mask"]


def _activations(name: str, a) -> Tensor:
    t = a if isinstance(a, Tensor) else torch.as_tensor(np.asarray(a))
    if t.ndim != 2:
        raise ConfigError(f"{name} must be 2-D (examples × neurons), got shape {tuple(t.shape)}; "
                          "flatten each example's neurons first (e.g. a.reshape(len(a), -1))")
    if t.is_complex() or t.dtype == torch.bool:
        raise ConfigError(f"{name} must hold real activations, got dtype {t.dtype}")
    t = t.detach().to(torch.float64)
    if len(t) < 3:
        raise ConfigError(f"{name} has {len(t)} examples; a correlation needs at least 3 (use more inputs)")
    bad = ~torch.isfinite(t)
    if bool(bad.any()):
        row, col = (int(v) for v in bad.nonzero()[0])
        raise ConfigError(f"{name} has a non-finite entry ({float(t[row, col])}) at example {row}, neuron {col}; "
                          "drop that example or fix the model")
    return t


def constant_neurons(activations) -> Tensor:
    """Which neurons take the same value on every example (dead ReLUs among them): boolean, shape ``(d,)``.

    A neuron is constant when all ``n`` of its activations are *exactly* equal — an exact test, because the
    post-ReLU activations of a dead neuron are exactly zero; a neuron that fires on a single example is not
    constant (its correlations are defined, if noisy).

    Args:
        activations: shape ``(n, d)``.

    Raises:
        ConfigError: not 2-D, fewer than 3 examples, non-finite entries.

    >>> constant_neurons(torch.tensor([[0.0, 1.0], [0.0, 2.0], [0.0, 0.0]])).tolist()
    [True, False]
    """
    a = _activations("activations", activations)
    return (a == a[:1]).all(0)


def activation_correlation(a, b) -> Tensor:
    """Pearson correlation between every neuron of one model and every neuron of another, over the same inputs.

    .. math::

        \\rho_{ij} = \\frac{\\sum_x (a_i(x) - \\bar a_i)(b_j(x) - \\bar b_j)}
                           {\\sqrt{\\sum_x (a_i(x) - \\bar a_i)^2}\\,\\sqrt{\\sum_x (b_j(x) - \\bar b_j)^2}},

    the sums over the ``n`` examples (the normalisation cancels, so it does not matter whether they are means).

    Args:
        a: activations of shape ``(n, d1)``; b: activations of shape ``(n, d2)`` on the same ``n`` inputs.

    Returns:
        float64 tensor of shape ``(d1, d2)`` with entries in ``[−1, 1]``; the row of a constant neuron of ``a``
        and the column of a constant neuron of ``b`` are ``NaN`` (see the module note: they cannot match).

    Raises:
        ConfigError: not 2-D, different numbers of examples, fewer than 3 examples, non-finite entries.

    Source:
        Li et al. 2016, arXiv:1511.07543, §2 (the correlation matrix between two networks' units); Gurnee et al.
        2024, arXiv:2401.12181, §2.1.

    >>> x = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    >>> activation_correlation(x, torch.cat([2 * x + 1, -x, 0 * x], 1)).round(decimals=12).tolist()
    [[1.0, -1.0, nan]]
    """
    a, b = _activations("a", a), _activations("b", b)
    if len(a) != len(b):
        raise ConfigError(f"a and b must hold the same examples in the same order: a has {len(a)} rows, b {len(b)}")
    a, b = a - a.mean(0), b - b.mean(0)
    na, nb = a.norm(dim=0), b.norm(dim=0)
    corr = (a.T @ b) / torch.outer(na, nb)
    dead_a, dead_b = _constant_columns(a), _constant_columns(b)
    corr[dead_a] = torch.nan
    corr[:, dead_b] = torch.nan
    return corr.clamp(-1.0, 1.0)


def _constant_columns(centred: Tensor) -> Tensor:
    """:func:`constant_neurons` of already centred float64 activations (exactly zero columns after centring are
    not guaranteed for a constant ``c`` in floating point, so the test is on the spread, which is exact)."""
    return (centred.max(0).values - centred.min(0).values) == 0


def best_match(corr) -> tuple[Tensor, Tensor]:
    """Each row neuron's best match among the column neurons: the largest correlation and its column.

    .. math:: m_i = \\max_j \\rho_{ij}

    Signed, not absolute: for non-negative (ReLU) activations a negatively correlated neuron codes a different
    feature. ``NaN`` entries (constant neurons) are skipped; a row with no finite entry has best match ``NaN``
    and index ``−1``.

    Args:
        corr: correlation matrix of shape ``(d1, d2)``, e.g. from :func:`activation_correlation`.

    Returns:
        ``(values, indices)``, float64 of shape ``(d1,)`` and int64 of shape ``(d1,)``.

    Raises:
        ConfigError: ``corr`` not 2-D or with no columns.

    >>> values, indices = best_match(torch.tensor([[0.25, 0.75], [float("nan")] * 2]))
    >>> values.tolist(), indices.tolist()
    ([0.75, nan], [1, -1])
    """
    c = corr if isinstance(corr, Tensor) else torch.as_tensor(np.asarray(corr))
    if c.ndim != 2 or c.shape[1] == 0:
        raise ConfigError(f"corr must be a 2-D (d1, d2) matrix with d2 >= 1, got shape {tuple(c.shape)}")
    c = c.to(torch.float64)
    filled = torch.where(torch.isnan(c), -torch.inf, c)
    values, indices = filled.max(1)
    none = torch.isinf(values)
    return values.masked_fill(none, torch.nan), indices.masked_fill(none, -1)


def best_match_correlations(reference, others: Sequence) -> Tensor:
    """The best-match correlation of every neuron of ``reference`` in each of the ``others``.

    Args:
        reference: activations of shape ``(n, d)``.
        others: ``K ≥ 1`` activation matrices of shapes ``(n, d_k)`` (the same inputs).

    Returns:
        float64 tensor of shape ``(K, d)``: entry ``[k, i]`` is :func:`best_match` of neuron ``i`` in model ``k``
        (``NaN`` for a constant neuron of ``reference``).

    Raises:
        ConfigError: no other model, or as :func:`activation_correlation`.
    """
    if len(others) == 0:
        raise ConfigError("best_match_correlations needs at least one other model to match against, got none")
    return torch.stack([best_match(activation_correlation(reference, other))[0] for other in others])


def universal_mask(reference, others: Sequence, threshold: float) -> Tensor:
    """Universal neurons: those of ``reference`` whose best match in **every** other model reaches ``threshold``.

    .. math:: u_i = \\big[\\min_k \\max_j \\rho^{(k)}_{ij} \\ge \\tau\\big]

    Constant (dead) neurons are never universal. How high ``τ`` must be to mean anything depends on the number of
    candidates ``d_k``: the maximum of more correlations is larger by chance, so compare with the same statistic
    against models that share nothing learned (e.g. untrained ones of the same width).

    Args:
        reference: activations of shape ``(n, d)``; others: ``K ≥ 1`` matrices of shapes ``(n, d_k)``.
        threshold: ``τ`` in ``(−1, 1]``.

    Returns:
        boolean tensor of shape ``(d,)``.

    Raises:
        ConfigError: a threshold outside ``(−1, 1]``, or as :func:`best_match_correlations`.

    Source:
        Gurnee et al. 2024, arXiv:2401.12181, §2.1 (neurons whose max correlation across seeds is high);
        Dravid et al. 2023, arXiv:2306.09346 (neurons matched across every model of a population).

    >>> x = torch.tensor([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0]])
    >>> universal_mask(x, [x[:, :1] + 1, x], 0.9).tolist()
    [True, False]
    """
    if not (isinstance(threshold, (int, float)) and -1.0 < threshold <= 1.0):
        raise ConfigError(f"threshold must be a correlation in (-1, 1], got {threshold!r}")
    best = best_match_correlations(reference, others)
    return torch.nan_to_num(best, nan=-torch.inf).min(0).values >= threshold


def class_selectivity(activations, labels, num_classes: int | None = None) -> Tensor:
    """Class selectivity index of each neuron (Morcos, Barrett, Rabinowitz, Botvinick 2018).

    .. math::

        \\mathrm{SI}_i = \\frac{\\mu_{\\max} - \\mu_{-\\max}}{\\mu_{\\max} + \\mu_{-\\max}},

    with ``μ_max`` the largest of the neuron's class-conditional mean activations and ``μ_−max`` the mean of the
    other ``C − 1`` class-conditional means. For non-negative activations it lies in ``[0, 1]``: 0 when every class
    drives the neuron equally, 1 when only one class does.

    Args:
        activations: non-negative (e.g. post-ReLU) activations of shape ``(n, d)``.
        labels: integer class labels of shape ``(n,)``, in ``0..C−1``.
        num_classes: ``C``; ``None`` takes ``max(labels) + 1``.

    Returns:
        float64 tensor of shape ``(d,)``; ``NaN`` for a neuron that is zero on every example (``0/0``).

    Raises:
        ConfigError: negative activations (the index is meant for non-negative ones; take them after the ReLU),
            labels of the wrong shape or outside ``0..C−1``, a class with no example, fewer than 2 classes.

    Source:
        Morcos et al. 2018, "On the importance of single directions for generalization", arXiv:1803.06959, §2.4.

    >>> a = torch.tensor([[3.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    >>> class_selectivity(a, torch.tensor([0, 1, 2])).tolist()
    [0.5, 0.0]
    """
    a = _activations("activations", activations)
    if bool((a < 0).any()):
        raise ConfigError(f"class_selectivity needs non-negative activations, got a minimum of {float(a.min()):.4g}; "
                          "pass post-ReLU activations (or shift them to be non-negative)")
    y = labels if isinstance(labels, Tensor) else torch.as_tensor(np.asarray(labels))
    if y.shape != (len(a),) or y.is_floating_point() or y.dtype == torch.bool:
        raise ConfigError(f"labels must be integers of shape ({len(a)},), got dtype {y.dtype}, shape {tuple(y.shape)}")
    c = int(y.max()) + 1 if num_classes is None else num_classes
    if c < 2 or int(y.min()) < 0 or int(y.max()) >= c:
        raise ConfigError(f"labels must lie in 0..num_classes-1 with num_classes >= 2, got labels in "
                          f"{int(y.min())}..{int(y.max())} and num_classes={num_classes!r}")
    counts = torch.bincount(y, minlength=c)
    if bool((counts == 0).any()):
        raise ConfigError(f"class {int((counts == 0).nonzero()[0])} of 0..{c - 1} has no example; every class needs "
                          "one: lower num_classes if the missing classes are the last ones, else relabel the classes present "
                          "as 0..C'−1 (torch.unique(labels, return_inverse=True))")
    onehot = torch.nn.functional.one_hot(y.long(), c).to(torch.float64)
    means = (onehot.T @ a) / counts[:, None].to(torch.float64)  # (C, d)
    top = means.max(0).values
    rest = (means.sum(0) - top) / (c - 1)
    return (top - rest) / (top + rest)
