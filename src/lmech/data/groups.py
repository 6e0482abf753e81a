"""Finite groups (cyclic ``Z_n``, dihedral ``D_n``, ``S_3 ≅ D_3``) with their multiplication tables and
unitary irreducible representations, and the sequential group composition task.

A group of order ``|G|`` is a :class:`FiniteGroup`: elements are the integers ``0 … |G|−1`` (``0`` is the
identity), ``table[a, b]`` is the index of the product ``a·b``, and ``irreps`` lists every irreducible
representation up to isomorphism as explicit matrices of shape ``(|G|, d, d)`` (complex128, unitary). Irreps
that are complex conjugates of each other (``k`` and ``n − k`` of ``Z_n``) share a *frequency*: the real
Fourier components of a real signal live on frequencies, and :func:`fourier_template` sets the power per
frequency.

Group Fourier transform used throughout lmech (Serre 1977, §6.2; Marchetti, Kunin et al. 2026,
arXiv:2602.03655, §2):

.. math::

    \\hat f(\\rho) = \\sum_{g\\in G} f(g)\\,\\rho(g), \\qquad
    f(g) = \\frac{1}{|G|}\\sum_\\rho d_\\rho \\operatorname{tr}\\big(\\rho(g)^\\dagger \\hat f(\\rho)\\big), \\qquad
    \\sum_g |f(g)|^2 = \\frac{1}{|G|}\\sum_\\rho d_\\rho \\|\\hat f(\\rho)\\|_F^2 .

The *sequential group composition* task (Marchetti et al. 2026, §2) maps a sequence ``g_1, …, g_k`` to its
product ``g_1·g_2·⋯·g_k``; each element is encoded by the left-regular action on a template
``x ∈ R^{|G|}``, ``(λ(g)x)(h) = x(g⁻¹h)``, so ``λ(g_1)⋯λ(g_k)x = λ(g_1⋯g_k)x`` and every encoded element has
the template's Fourier power. The one-hot encoding is the template ``δ_e``.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import ConfigError

__all__ = ["FiniteGroup", "GroupComposition", "Irrep", "composition_dataset", "cyclic", "dihedral",
           "fourier_template", "group_from_name", "regular_encoding", "symmetric3"]

MAX_EXHAUSTIVE = 2**22  # rows of an exhaustive composition dataset (|G|^k) held at once


@dataclass(frozen=True, eq=False)
class Irrep:
    """One irreducible unitary representation: ``matrices[g]`` is ``ρ(g)``, shape ``(|G|, d, d)``, complex128."""

    name: str
    matrices: Tensor

    @property
    def dim(self) -> int:
        return int(self.matrices.shape[-1])


@dataclass(frozen=True, eq=False)
class FiniteGroup:
    """A finite group given by its multiplication table and irreducible representations.

    Attributes:
        name: e.g. ``"Z7"``, ``"D5"``, ``"S3"``.
        table: ``table[a, b]`` = index of ``a·b``, shape ``(order, order)``, int64; element 0 is the identity.
        irreps: every irrep up to isomorphism; ``Σ_ρ d_ρ² = order``.
        frequency: ``frequency[i]`` = the frequency of ``irreps[i]``, shape ``(num_irreps,)``, int64; an irrep and
            its complex conjugate share one (for ``Z_n``, irrep ``k`` has frequency ``min(k, n − k)``).
        element_names: a readable name per element (``"r^2 s"``).
    """

    name: str
    table: Tensor
    irreps: tuple[Irrep, ...]
    frequency: Tensor
    element_names: tuple[str, ...]

    @property
    def order(self) -> int:
        return int(self.table.shape[0])

    @property
    def num_frequencies(self) -> int:
        return int(self.frequency.max()) + 1

    @property
    def inverse(self) -> Tensor:
        """``inverse[a]`` = index of ``a⁻¹``, shape ``(order,)``."""
        return (self.table == 0).to(torch.int64).argmax(dim=1)

    def multiply(self, a: Tensor, b: Tensor) -> Tensor:
        """Elementwise products ``a·b`` of index tensors of the same (broadcast) shape."""
        return self.table[a, b]

    def product(self, elements: Tensor) -> Tensor:
        """``g_1·g_2·⋯·g_k`` along the last dimension of ``elements`` (shape ``(..., k)``), shape ``(...)``."""
        out = elements[..., 0]
        for t in range(1, elements.shape[-1]):
            out = self.table[out, elements[..., t]]
        return out

    def __repr__(self) -> str:
        dims = [r.dim for r in self.irreps]
        return f"FiniteGroup({self.name}, order={self.order}, irrep dims={dims})"


def _check_int(name: str, value, low: int) -> int:
    """``value`` as a Python int (NumPy and torch integers accepted), or a ConfigError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ConfigError(f"{name} must be an integer ≥ {low}, got {value!r}")
    return int(value)


def cyclic(n: int) -> FiniteGroup:
    """The cyclic group ``Z_n`` (addition mod ``n``) with its ``n`` one-dimensional irreps
    ``ρ_k(a) = exp(2πi k a / n)``, ``k = 0 … n−1`` (frequency ``min(k, n − k)``).

    Raises:
        ConfigError: ``n < 1``.

    >>> g = cyclic(5); int(g.multiply(torch.tensor(3), torch.tensor(4))), g.num_frequencies
    (2, 3)
    """
    _check_int("n", n, 1)
    a = torch.arange(n)
    table = (a[:, None] + a[None, :]) % n
    irreps = tuple(Irrep(f"k={k}", torch.exp(2j * math.pi * k * a.double() / n).reshape(n, 1, 1)) for k in range(n))
    frequency = torch.minimum(a, (n - a) % n)
    return FiniteGroup(f"Z{n}", table, irreps, frequency, tuple(str(int(v)) for v in a))


def _rotation(theta: Tensor) -> Tensor:
    c, s = torch.cos(theta), torch.sin(theta)
    return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)


def dihedral(n: int) -> FiniteGroup:
    """The dihedral group ``D_n`` of order ``2n`` (symmetries of the regular ``n``-gon).

    Element ``a + n·b`` is ``r^a s^b`` (``a ∈ Z_n``, ``b ∈ {0, 1}``), with ``s r s = r⁻¹``, so
    ``r^a s^b · r^c s^d = r^{a + (−1)^b c} s^{b+d}``. Irreps (all real): the trivial one, the sign
    ``r ↦ 1, s ↦ −1``, for even ``n`` also ``r ↦ −1, s ↦ ±1``, and the 2-d ones

    .. math::  \\rho_j(r^a s^b) = R(2\\pi j a / n)\\,\\operatorname{diag}(1, -1)^b, \\qquad 1 \\le j < n/2,

    with ``R(θ)`` the rotation by ``θ``. Each irrep is its own frequency.

    Raises:
        ConfigError: ``n < 2``.

    Source:
        Serre, *Linear Representations of Finite Groups* (1977), §5.3.
    """
    _check_int("n", n, 2)
    idx = torch.arange(2 * n)
    a, b = idx % n, idx // n
    sign = 1 - 2 * b
    rot = (a[:, None] + sign[:, None] * a[None, :]) % n
    table = rot + n * ((b[:, None] + b[None, :]) % 2)
    ones = torch.ones(2 * n, dtype=torch.float64)
    one_dim = [("trivial", ones), ("sign", sign.double())]
    if n % 2 == 0:
        one_dim += [("r->-1,s->1", (-1.0) ** a.double()), ("r->-1,s->-1", (-1.0) ** a.double() * sign.double())]
    irreps = [Irrep(name, chi.reshape(-1, 1, 1).to(torch.complex128)) for name, chi in one_dim]
    reflect = torch.where(b[:, None, None] == 1, torch.diag(torch.tensor([1.0, -1.0], dtype=torch.float64)),
                          torch.eye(2, dtype=torch.float64))  # diag(1, −1)^b, shape (2n, 2, 2)
    for j in range(1, (n - 1) // 2 + 1):
        mats = _rotation(2 * math.pi * j * a.double() / n) @ reflect
        irreps.append(Irrep(f"2d j={j}", mats.to(torch.complex128)))
    rot_names = ["e", "r"] + [f"r^{k}" for k in range(2, n)]
    names = tuple(rot_names[ai] if not bi else ("s" if ai == 0 else f"{rot_names[ai]} s")
                  for ai, bi in zip(a.tolist(), b.tolist()))
    return FiniteGroup(f"D{n}", table, tuple(irreps), torch.arange(len(irreps)), names)


def symmetric3() -> FiniteGroup:
    """The symmetric group ``S_3``, built as ``D_3`` through the isomorphism ``r ↦ (0 1 2)``, ``s ↦ (1 2)``
    (composition ``(στ)(i) = σ(τ(i))``); irreps: trivial, sign, standard (2-d)."""
    d3 = dihedral(3)
    return FiniteGroup("S3", d3.table, d3.irreps, d3.frequency, d3.element_names)


def group_from_name(name: str) -> FiniteGroup:
    """``"Z7"`` or ``"C7"`` → :func:`cyclic`, ``"D5"`` → :func:`dihedral`, ``"S3"`` → :func:`symmetric3`.

    Raises:
        ConfigError: an unrecognised name.
    """
    m = re.fullmatch(r"\s*([ZzCcDdSs])_?(\d+)\s*", str(name))
    if m is None or (m.group(1).upper() == "S" and m.group(2) != "3"):
        raise ConfigError(f"unknown group {name!r}; use 'Z<n>' (or 'C<n>') for cyclic, 'D<n>' for dihedral, or 'S3'")
    kind, n = m.group(1).upper(), int(m.group(2))
    return {"Z": cyclic, "C": cyclic, "D": dihedral}[kind](n) if kind != "S" else symmetric3()


def _random_unitary(d: int, gen: torch.Generator, real: bool) -> Tensor:
    """Haar-random orthogonal (``real``) or unitary ``d × d`` matrix (QR of a Gaussian with the sign fix)."""
    z = torch.randn(d, d, generator=gen, dtype=torch.float64)
    if not real:
        z = torch.complex(z, torch.randn(d, d, generator=gen, dtype=torch.float64))
    q, r = torch.linalg.qr(z)
    diag = torch.diagonal(r)
    return (q * (diag / diag.abs())).to(torch.complex128)


def fourier_template(group: FiniteGroup, power, *, seed: int | None = None) -> Tensor:
    """A real template ``x ∈ R^{|G|}`` whose group-Fourier power at each frequency is set by the caller.

    Frequency ``ω`` gets ``power[ω] = Σ_{ρ: freq(ρ)=ω} d_ρ ‖x̂(ρ)‖²_F / |G|`` exactly, so ``Σ_g x(g)² = Σ_ω power[ω]``.
    Each coefficient is a scaled unitary matrix, ``x̂(ρ) = c_ρ U_ρ``: for a real irrep ``c_ρ = √(P|G|)/d_ρ`` and
    ``U_ρ`` orthogonal; for a conjugate pair the power is split evenly and ``x̂(ρ̄) = conj(x̂(ρ))``, which keeps
    ``x`` real. ``seed=None`` takes ``U_ρ = I`` (a symmetric template: ``x(g) = x(g⁻¹)``); an integer draws the
    ``U_ρ`` Haar-random from a private generator (a generic template with the same power spectrum). The
    encoding ``λ(g)x`` is injective when every nontrivial irrep has nonzero power.

    Args:
        group: the group.
        power: non-negative powers, one per frequency, shape ``(group.num_frequencies,)``; put 0 at frequency 0
            for a mean-zero template (as Marchetti et al. do).
        seed: seeds the random unitaries; ``None`` for identities.

    Returns:
        Template of shape ``(|G|,)``, float64.

    Raises:
        ConfigError: wrong length, negative or non-finite powers.

    Source:
        Marchetti, Kunin, Myers, Acosta, Miolane (2026), arXiv:2602.03655, §2 and §3 (the template's Fourier
        statistics set the order in which irreps are learned); Kunin et al. (2025), arXiv:2506.06489.

    >>> x = fourier_template(cyclic(8), [0.0, 1.0, 0.0, 0.0, 0.0])  # power A²p/2 = 1 at frequency 1
    >>> bool(torch.allclose(x, 0.5 * torch.cos(2 * math.pi * torch.arange(8, dtype=torch.float64) / 8)))
    True
    """
    p = torch.as_tensor(power, dtype=torch.float64).reshape(-1)
    if p.numel() != group.num_frequencies:
        raise ConfigError(f"power must have one entry per frequency of {group.name} ({group.num_frequencies}), "
                          f"got {p.numel()}")
    if not bool(torch.isfinite(p).all()) or bool((p < 0).any()):
        raise ConfigError(f"power must be finite and ≥ 0, got {p.tolist()}")
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    n = group.order
    x = torch.zeros(n, dtype=torch.complex128)
    done: set[int] = set()
    for i, rho in enumerate(group.irreps):
        if i in done:
            continue
        members = (group.frequency == group.frequency[i]).nonzero().flatten().tolist()  # starts with i
        done.update(members)
        real = len(members) == 1
        if not real and (len(members) != 2 or not torch.allclose(group.irreps[members[1]].matrices,
                                                                 rho.matrices.conj())):
            raise ConfigError(f"{group.name}: a frequency must hold one real irrep or an irrep and its complex "
                              f"conjugate (as matrices), but frequency {int(group.frequency[i])} holds irreps {members}")
        d, share = rho.dim, float(p[group.frequency[i]]) / len(members)
        c = math.sqrt(share * n) / d
        u = torch.eye(d, dtype=torch.complex128) if gen is None else _random_unitary(d, gen, real=real)
        coeffs = [c * u] if real else [c * u, c * u.conj()]  # x̂(ρ̄) = conj(x̂(ρ)) keeps x real
        for j, coef in zip(members, coeffs):
            mats = group.irreps[j].matrices  # x(g) += d/|G| tr(ρ(g)^† x̂(ρ))
            x += d / n * torch.einsum("gji,ji->g", mats.conj(), coef)
    return x.real.contiguous()


def regular_encoding(group: FiniteGroup, template: Tensor | None = None) -> Tensor:
    """Encodings of all elements by the left-regular action on a template: ``E[g, h] = x(g⁻¹h)``.

    Args:
        group: the group.
        template: shape ``(|G|,)``; ``None`` is the one-hot template ``δ_e`` (then ``E`` is the identity).

    Returns:
        ``E`` of shape ``(|G|, |G|)``, row ``g`` the encoding of ``g``; ``E[a·b] = λ(a) E[b]``.

    Raises:
        ConfigError: a template of the wrong shape.
    """
    n = group.order
    if template is None:
        return torch.eye(n, dtype=torch.float64)
    template = torch.as_tensor(template)
    if template.shape != (n,):
        raise ConfigError(f"template must have shape ({n},) for {group.name}, got {tuple(template.shape)}")
    return template[group.table[group.inverse[:, None], torch.arange(n)[None, :]]]


@dataclass(frozen=True)
class GroupComposition:
    """Sequences of group elements and their products.

    Attributes:
        elements: ``(n, k)`` int64 element indices.
        products: ``(n,)`` int64, ``g_1·⋯·g_k`` (class labels).
        inputs: ``(n, k, |G|)`` encoded elements, ``E[g_t]``.
        targets: ``(n, |G|)`` encoded products, ``E[g_1⋯g_k]`` (regression targets as in Marchetti et al.).
    """

    elements: Tensor
    products: Tensor
    inputs: Tensor
    targets: Tensor

    def __len__(self) -> int:
        return len(self.products)


def composition_dataset(group: FiniteGroup, k: int, *, template: Tensor | None = None,
                        num_samples: int | None = None, seed: int = 0,
                        dtype: torch.dtype = torch.float32) -> GroupComposition:
    """The sequential group composition task: sequences of ``k`` elements and their product ``g_1·g_2·⋯·g_k``.

    ``num_samples=None`` enumerates all ``|G|^k`` sequences (row ``i`` is ``i`` written in base ``|G|``, first
    element most significant); an integer draws sequences uniformly with replacement from a private generator.

    Args:
        group: the group (``cyclic(p)`` with ``k = 2`` is modular addition).
        k: sequence length, ≥ 1.
        template: encoding template of shape ``(|G|,)`` (:func:`fourier_template`); ``None`` for one-hot.
        num_samples: sampled sequences, or ``None`` for all.
        seed: seeds the sampling.
        dtype: of ``inputs`` and ``targets``.

    Raises:
        ConfigError: ``k < 1``, ``num_samples < 1``, or an exhaustive set over :data:`MAX_EXHAUSTIVE` rows.

    Source:
        Marchetti, Kunin, Myers, Acosta, Miolane (2026), arXiv:2602.03655, §2.
    """
    _check_int("k", k, 1)
    n = group.order
    if num_samples is None:
        if n**k > MAX_EXHAUSTIVE:
            raise ConfigError(f"all {n}^{k} = {n**k} sequences exceed {MAX_EXHAUSTIVE}; pass num_samples to sample")
        idx = torch.arange(n**k)
        elements = torch.stack([(idx // n ** (k - 1 - t)) % n for t in range(k)], dim=1)
    else:
        _check_int("num_samples", num_samples, 1)
        gen = torch.Generator().manual_seed(seed)
        elements = torch.randint(0, n, (num_samples, k), generator=gen)
    products = group.product(elements)
    enc = regular_encoding(group, template).to(dtype)
    return GroupComposition(elements, products, enc[elements], enc[products])
