"""Fourier observables on ``Z_p`` and on finite groups: power per frequency, key frequencies, and the loss of
modular-addition logits restricted to (or excluding) a set of frequencies.

Real Fourier basis of ``Z_p`` (Nanda et al. 2023, §4): the orthonormal rows

.. math::

    \\tfrac{1}{\\sqrt p}, \\quad \\sqrt{\\tfrac2p}\\cos(\\omega_k x), \\quad \\sqrt{\\tfrac2p}\\sin(\\omega_k x)
    \\ (1 \\le k < p/2), \\quad \\tfrac{1}{\\sqrt p}(-1)^x \\ (p \\text{ even}), \\qquad \\omega_k = 2\\pi k / p .

The *power* at frequency ``k`` is the sum of squared coefficients on the rows of frequency ``k``; the powers
over ``k = 0 … ⌊p/2⌋`` sum to ``‖f‖²`` (Parseval). On a finite group the power of irrep ``ρ`` is
``d_ρ ‖f̂(ρ)‖²_F / |G|`` with ``f̂(ρ) = Σ_g f(g) ρ(g)`` (see :mod:`lmech.data.groups`), and the same identity holds.
On ``Z_p`` with :func:`lmech.data.groups.cyclic`, the group power merged by frequency equals :func:`fourier_power`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..data.groups import FiniteGroup

__all__ = ["excluded_loss", "fourier_basis", "fourier_power", "frequency_projector", "group_fourier_power",
           "group_fourier_transform", "key_frequencies", "restricted_logits", "restricted_loss"]


def _real(name: str, values) -> Tensor:
    t = values if isinstance(values, Tensor) else torch.as_tensor(values)
    if t.is_complex():
        raise ConfigError(f"{name} is complex; pass a real tensor (e.g. the real and imaginary parts separately)")
    if not t.is_floating_point():
        t = t.to(torch.float64)
    t = t.detach()
    if not bool(torch.isfinite(t).all()):
        raise ConfigError(f"{name} has non-finite entries; fix them before the Fourier transform")
    return t


def _dim(values: Tensor, dim: int) -> int:
    if not -values.ndim <= dim < values.ndim:
        raise ConfigError(f"dim = {dim} is out of range for a tensor of shape {tuple(values.shape)}")
    return dim % values.ndim


def fourier_basis(p: int, *, dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
    """The real orthonormal Fourier basis of ``Z_p`` (module docstring) and each row's frequency.

    Returns:
        ``(basis, freqs)``: ``basis`` of shape ``(p, p)`` (rows ordered constant, cos 1, sin 1, cos 2, …), with
        ``basis @ basis.T = I``; ``freqs`` of shape ``(p,)``, int64.

    Raises:
        ConfigError: ``p < 1``.

    Source:
        Nanda, Chan, Lieberum, Smith, Steinhardt (2023), arXiv:2301.05217, §4.
    """
    if isinstance(p, bool) or not isinstance(p, int) or p < 1:
        raise ConfigError(f"p must be an integer ≥ 1, got {p!r}")
    x = torch.arange(p, dtype=torch.float64)
    rows, freqs = [torch.full((p,), 1 / math.sqrt(p), dtype=torch.float64)], [0]
    for k in range(1, (p + 1) // 2):
        w = 2 * math.pi * k * x / p
        rows += [math.sqrt(2 / p) * torch.cos(w), math.sqrt(2 / p) * torch.sin(w)]
        freqs += [k, k]
    if p % 2 == 0 and p > 1:
        rows.append(torch.cos(math.pi * x) / math.sqrt(p))
        freqs.append(p // 2)
    return torch.stack(rows).to(dtype), torch.tensor(freqs, dtype=torch.int64)


def fourier_power(values, *, dim: int = 0, reduce: bool = True) -> Tensor:
    """Power of a real tensor at each frequency ``k = 0 … ⌊p/2⌋`` of ``Z_p`` along ``dim`` (of size ``p``).

    .. math::  P_k = \\sum_{\\text{rows } r \\text{ of frequency } k} \\langle b_r, f\\rangle^2
        = \\frac{c_k}{p} |F_k|^2, \\quad F_k = \\sum_x f(x) e^{-i\\omega_k x},\\ c_k = 2 \\text{ if } 0 < k < p/2
        \\text{ else } 1,

    computed by ``torch.fft.rfft``. For an embedding matrix ``W_E`` of shape ``(p, d_model)``, ``dim=0`` gives the
    power of the token embeddings at each frequency, summed over the model dimensions (Nanda et al., Fig. 3).

    Args:
        values: real tensor; ``dim`` indexes ``Z_p``.
        dim: the group dimension.
        reduce: sum over all other dimensions (shape ``(⌊p/2⌋ + 1,)``); ``False`` keeps them, with ``dim`` replaced
            by frequencies (e.g. per-neuron spectra).

    Returns:
        Powers, float; ``Σ_k P_k = ‖values‖²``.

    Raises:
        ConfigError: complex or non-finite values; ``dim`` out of range.

    Source:
        Nanda et al. (2023), arXiv:2301.05217, §4 and App. C.
    """
    v = _real("values", values)
    dim = _dim(v, dim)
    p = v.shape[dim]
    if p == 0:
        raise ConfigError(f"values has no entries along dim {dim} (shape {tuple(v.shape)}); the group needs p ≥ 1")
    spec = torch.fft.rfft(v, dim=dim).abs().square()
    weight = torch.full((p // 2 + 1,), 2.0 / p, dtype=spec.dtype, device=spec.device)
    weight[0] = 1.0 / p
    if p % 2 == 0:
        weight[-1] = 1.0 / p
    shape = [1] * v.ndim
    shape[dim] = -1
    power = spec * weight.reshape(shape)
    if reduce:
        return power.movedim(dim, 0).reshape(p // 2 + 1, -1).sum(1)
    return power


def key_frequencies(power, *, num: int | None = None, coverage: float | None = None,
                    include_zero: bool = False) -> Tensor:
    """The frequencies that carry most of the power, strongest first.

    Exactly one of ``num`` (the ``num`` strongest) or ``coverage`` (the fewest strongest whose power reaches
    ``coverage`` of the total over the candidate frequencies) selects them. Frequency 0 (the mean) is a candidate
    only with ``include_zero``. Nanda et al. read the key frequencies of a grokked network off the embedding's
    spectrum, where a handful of frequencies hold almost all the power.

    Args:
        power: shape ``(num_frequencies,)``, e.g. from :func:`fourier_power`.

    Returns:
        Frequency indices, int64, in decreasing order of power.

    Raises:
        ConfigError: both or neither of ``num``/``coverage``; ``num`` out of range; ``coverage ∉ (0, 1]``;
            negative power; no candidate power.
    """
    pw = _real("power", power).reshape(-1).cpu()
    if (num is None) == (coverage is None):
        raise ConfigError("pass exactly one of num (how many frequencies) or coverage (fraction of the power)")
    if bool((pw < 0).any()):
        raise ConfigError("power must be ≥ 0")
    cand = torch.arange(len(pw)) if include_zero else torch.arange(1, len(pw))
    order = cand[torch.argsort(pw[cand], descending=True, stable=True)]
    if num is not None:
        if isinstance(num, bool) or not isinstance(num, int) or not 1 <= num <= len(order):
            raise ConfigError(f"num must be an integer in 1..{len(order)}, got {num!r}")
        return order[:num]
    if not 0 < coverage <= 1:
        raise ConfigError(f"coverage must be in (0, 1], got {coverage!r}")
    total = float(pw[cand].sum())
    if total <= 0:
        raise ConfigError("the candidate frequencies carry no power; key frequencies are undefined")
    share = torch.cumsum(pw[order], 0) / total
    count = int(torch.searchsorted(share, torch.tensor(coverage, dtype=share.dtype) - 1e-12)) + 1
    return order[:min(count, len(order))]


def _freq_list(freqs, p: int) -> list[int]:
    values = torch.as_tensor(freqs).reshape(-1)
    if values.dtype.is_floating_point or values.is_complex() or values.dtype == torch.bool:
        raise ConfigError(f"frequencies must be integers, got {values.tolist()} ({values.dtype}); pass e.g. [1, 5]")
    out = sorted({int(k) for k in values.tolist()})
    if out and not (0 <= out[0] and out[-1] <= p // 2):
        raise ConfigError(f"frequencies must lie in 0..{p // 2} for p = {p}, got {out}")
    return out


def frequency_projector(p: int, freqs, *, constant: bool = True, dtype: torch.dtype = torch.float64) -> Tensor:
    """Orthogonal projector onto the span of the Fourier rows of the given frequencies (plus the constant row
    with ``constant``), shape ``(p, p)``: ``Π = Σ_r b_r b_rᵀ``.

    Raises:
        ConfigError: a frequency outside ``0 … ⌊p/2⌋``.
    """
    basis, row_freq = fourier_basis(p)
    keep = set(_freq_list(freqs, p)) | ({0} if constant else set())
    rows = basis[torch.tensor([int(f) in keep for f in row_freq], dtype=torch.bool)]
    return (rows.T @ rows).to(dtype)


def _logits_grid(logits) -> Tensor:
    t = _real("logits", logits)
    if t.ndim == 2:
        p = math.isqrt(t.shape[0])
        if p * p != t.shape[0]:
            raise ConfigError(f"2-D logits must have p² rows (all pairs, row a·p + b), got {t.shape[0]}")
        t = t.reshape(p, p, -1)
    if t.ndim != 3 or t.shape[0] != t.shape[1] or t.shape[2] < t.shape[0]:
        raise ConfigError(f"logits must have shape (p, p, C) or (p², C) over all pairs (a, b), with C ≥ p classes; "
                          f"got {tuple(torch.as_tensor(logits).shape)}")
    return t


def restricted_logits(logits, freqs, *, exclude: bool = False) -> Tensor:
    """Modular-addition logits projected onto the key frequencies' components ``cos ω_k(a+b)``, ``sin ω_k(a+b)``.

    Each class's logits, as a function of the pair, are projected onto
    ``span{1, cos ω_k(a+b), sin ω_k(a+b) : k ∈ freqs}`` (orthogonal in ``R^{p²}``): average over each fibre
    ``a + b ≡ s``, project that function of ``s`` with :func:`frequency_projector`, and read it back at
    ``s = a + b``. ``exclude=True`` instead *removes* the ``cos``/``sin`` components of ``freqs`` (the constant stays).
    The span contains ``cos ω_k(a+b−c)`` for every class ``c``, the form of a grokked network's logits.

    Args:
        logits: shape ``(p, p, C)`` (pair ``(a, b)``, class ``c``) or ``(p², C)`` with row ``a·p + b``; ``C ≥ p``.
        freqs: frequencies in ``1 … ⌊p/2⌋``.
        exclude: remove rather than keep.

    Returns:
        Logits of the input's shape.

    Raises:
        ConfigError: a shape that is not all ``p²`` pairs, or frequencies out of range.

    Source:
        Nanda et al. (2023), arXiv:2301.05217, §5.1 (restricted and excluded loss). Their code projects the MLP
        activations at the last position; this projects the logits, which is the same when the logits are a
        linear function of those activations (the other paths give the mean, which the constant term keeps).
    """
    grid = _logits_grid(logits)
    p = grid.shape[0]
    s = (torch.arange(p)[:, None] + torch.arange(p)[None, :]) % p
    fibre = torch.zeros(p, grid.shape[2], dtype=grid.dtype, device=grid.device)
    fibre.index_add_(0, s.flatten().to(grid.device), grid.reshape(p * p, -1))
    fibre = fibre / p
    proj = frequency_projector(p, freqs, constant=not exclude).to(grid.dtype).to(grid.device)
    out = proj @ fibre
    out = out[s] if not exclude else grid - out[s]
    return out.reshape(torch.as_tensor(logits).shape)


def _addition_loss(grid: Tensor) -> float:
    p = grid.shape[0]
    labels = ((torch.arange(p)[:, None] + torch.arange(p)[None, :]) % p).flatten().to(grid.device)
    return float(torch.nn.functional.cross_entropy(grid.reshape(p * p, -1), labels))


def restricted_loss(logits, freqs) -> float:
    """Mean cross-entropy (nats) over all ``p²`` pairs, labels ``(a + b) mod p``, of :func:`restricted_logits`
    (keep only ``freqs``). Close to the full loss once the network uses only those frequencies (Nanda et al.
    2023, §5.1). Errors as :func:`restricted_logits`."""
    return _addition_loss(_logits_grid(restricted_logits(logits, freqs)))


def excluded_loss(logits, freqs) -> float:
    """Mean cross-entropy (nats) of the logits with the ``freqs`` components removed (Nanda et al. 2023, §5.1):
    rises during circuit formation, while the train loss stays low. Errors as :func:`restricted_logits`."""
    return _addition_loss(_logits_grid(restricted_logits(logits, freqs, exclude=True)))


def group_fourier_transform(values, group: FiniteGroup, *, dim: int = 0) -> tuple[Tensor, ...]:
    """``f̂(ρ) = Σ_g f(g) ρ(g)`` for every irrep of ``group``, along ``dim`` (of size ``|G|``).

    Args:
        values: real or complex tensor; ``dim`` indexes the group elements.
        group: a :class:`lmech.data.groups.FiniteGroup`.

    Returns:
        One complex tensor per irrep, of shape ``(*other dims, d_ρ, d_ρ)``.

    Raises:
        ConfigError: ``dim`` out of range or of the wrong size; non-finite values.

    Source:
        Serre (1977), §6.2; Marchetti, Kunin et al. (2026), arXiv:2602.03655, §2.
    """
    if not (hasattr(group, "irreps") and hasattr(group, "order")):  # a FiniteGroup (duck-typed: no import of data)
        raise ConfigError(f"group must be a FiniteGroup, got {group!r}; for a name use "
                          "lmech.data.groups.group_from_name(name)")
    v = values if isinstance(values, Tensor) else torch.as_tensor(values)
    v = v.detach()
    if not bool(torch.isfinite(v).all()):
        raise ConfigError("values has non-finite entries; fix them before the Fourier transform")
    dim = _dim(v, dim)
    if v.shape[dim] != group.order:
        raise ConfigError(f"values has {v.shape[dim]} entries along dim {dim}, but {group.name} has {group.order} "
                          "elements")
    cdtype = torch.complex64 if v.dtype in (torch.float32, torch.complex64, torch.float16, torch.bfloat16) \
        else torch.complex128
    v = v.movedim(dim, -1).to(cdtype)
    return tuple(torch.einsum("...g,gij->...ij", v, rho.matrices.to(cdtype).to(v.device)) for rho in group.irreps)


def group_fourier_power(values, group: FiniteGroup, *, dim: int = 0, by: str = "frequency",
                        reduce: bool = True) -> Tensor:
    """Power of ``values`` on each irrep (``by="irrep"``) or frequency (``by="frequency"``: conjugate irreps
    merged) of a finite group:

    .. math::  P_\\rho = \\frac{d_\\rho}{|G|} \\|\\hat f(\\rho)\\|_F^2, \\qquad \\sum_\\rho P_\\rho = \\sum_g |f(g)|^2 .

    Args:
        values: tensor with ``|G|`` entries along ``dim`` (encodings, embedding matrices, template).
        group: a :class:`lmech.data.groups.FiniteGroup`.
        dim: the group dimension.
        by: ``"frequency"`` (shape ``(group.num_frequencies,)``) or ``"irrep"`` (``(len(group.irreps),)``).
        reduce: sum over the other dimensions; ``False`` keeps them in front (shape ``(*other, num)``).

    Raises:
        ConfigError: an unknown ``by``, or as :func:`group_fourier_transform`.

    Source:
        Marchetti, Kunin et al. (2026), arXiv:2602.03655, §2-3 (the power spectrum that orders learning).
    """
    if by not in ("frequency", "irrep"):
        raise ConfigError(f"by must be 'frequency' or 'irrep', got {by!r}")
    coeffs = group_fourier_transform(values, group, dim=dim)
    per = torch.stack([rho.dim / group.order * c.abs().square().sum((-2, -1)) for rho, c in zip(group.irreps, coeffs)],
                      dim=-1)
    if by == "frequency":
        merged = torch.zeros(*per.shape[:-1], group.num_frequencies, dtype=per.dtype, device=per.device)
        per = merged.index_add_(-1, group.frequency.to(per.device), per)
    return per.reshape(-1, per.shape[-1]).sum(0) if reduce else per
