"""Deep linear network mode dynamics against ODE integration, their limits, and GD simulation."""

import numpy as np
import pytest
import torch
from scipy.integrate import quad, solve_ivp

from lmech.errors import ConfigError
from lmech.theory import mode_learning_times, mode_trajectories, staircase_loss

S = np.array([3.0, 2.5, 2.0, 1.5, 1.2, 1.0])


def crossing_time(times: np.ndarray, a: np.ndarray, level: float) -> float:
    """The first time ``a`` reaches ``level``, by linear interpolation between samples."""
    k = int(np.argmax(a >= level))
    assert k > 0, "the trajectory starts above the level"
    return float(np.interp(level, a[k - 1 : k + 1], times[k - 1 : k + 1]))


@pytest.mark.parametrize(
    ("depth", "a0", "t_end", "rtol"),
    [(2, 1e-3, 6.0, 1e-8), (3, 1e-2, 20.0, 1e-6), (4, 1e-2, 20.0, 1e-6)],
    ids=["L2-closed-form", "L3", "L4"],
)
def test_trajectories_solve_the_mode_ode(depth, a0, t_end, rtol):
    # da/dt = L a^(2 - 2/L) (s - a); at depth 2 this is 2a(s - a), solved by the closed logistic form.
    times = np.linspace(0.0, t_end, 61)
    traj = mode_trajectories(S, times, depth=depth, init_strength=a0)
    sol = solve_ivp(
        lambda _t, a: depth * a ** (2 - 2 / depth) * (S - a),
        (0.0, t_end),
        np.full(S.shape, a0),
        t_eval=times,
        method="DOP853",
        rtol=1e-13,
        atol=1e-15,
    )
    np.testing.assert_allclose(traj, sol.y.T, rtol=rtol)


@pytest.mark.parametrize("depth", [2, 3, 4], ids=["L2", "L3", "L4"])
@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_learning_times_match_trajectory_crossings(depth, fraction):
    a0 = 1e-3
    t_pred = mode_learning_times(S, depth=depth, init_strength=a0, fraction=fraction)
    times = np.linspace(0.0, 1.2 * t_pred.max(), 20001)
    traj = mode_trajectories(S, times, depth=depth, init_strength=a0)
    t_cross = [crossing_time(times, traj[:, m], fraction * s) for m, s in enumerate(S)]
    np.testing.assert_allclose(t_pred, t_cross, rtol=1e-4)


@pytest.mark.parametrize("depth", [2, 3, 5])
def test_learning_times_match_quadrature(depth):
    a0, f = 1e-2, 0.7
    t_pred = mode_learning_times(S, depth=depth, init_strength=a0, fraction=f)
    ref = [quad(lambda a, s=s: 1 / (depth * a ** (2 - 2 / depth) * (s - a)), a0, f * s, epsrel=1e-12)[0] for s in S]
    np.testing.assert_allclose(t_pred, ref, rtol=1e-9)


def test_depth2_learning_time_closed_form():
    s, a0, f = 2.0, 0.01, 0.5
    expected = np.log(f * (s - a0) / ((1 - f) * a0)) / (2 * s)
    assert mode_learning_times([s], depth=2, init_strength=a0, fraction=f)[0] == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_limits_start_at_init_and_end_at_target(depth):
    a0 = np.full(S.shape, 1e-3)
    traj = mode_trajectories(S, [0.0, 1e4], depth=depth, init_strength=a0)
    np.testing.assert_allclose(traj[0], a0, rtol=1e-12)
    np.testing.assert_allclose(traj[-1], S, rtol=1e-8)
    assert staircase_loss(S, traj)[-1] == pytest.approx(0.0, abs=1e-12)
    assert staircase_loss(S, traj)[0] == pytest.approx(0.5 * np.sum((S - a0) ** 2), rel=1e-12)


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_larger_singular_values_are_learned_first(depth):
    t = mode_learning_times(S, depth=depth, init_strength=1e-3)
    assert np.all(np.diff(t) > 0)  # S is decreasing, so the learning times increase
    times = np.linspace(0.0, 1.5 * t.max(), 400)
    loss = staircase_loss(S, mode_trajectories(S, times, depth=depth, init_strength=1e-3))
    assert np.all(np.diff(loss) <= 1e-12)  # gradient flow never raises the loss


def test_staircase_loss_constant_is_unexplained_variance():
    a = np.array([[0.0, 0.0], [2.0, 1.0]])
    np.testing.assert_allclose(staircase_loss([2.0, 1.0], a, total_output_variance=6.0), [3.0, 0.5])
    with pytest.raises(ConfigError, match="total_output_variance must be >="):
        staircase_loss([2.0, 1.0], a, total_output_variance=4.0)
    with pytest.raises(ConfigError, match="trajectories must be finite"):
        staircase_loss([2.0, 1.0], np.zeros((3, 3)))


def random_orthogonal(d: int, gen: torch.Generator) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


@pytest.mark.parametrize(("depth", "lr", "a0"), [(2, 4e-3, 1e-2), (3, 3e-3, 3e-2)], ids=["L2", "L3"])
def test_gradient_descent_follows_the_mode_dynamics(depth, lr, a0):
    """GD on ½‖U diag(s) Vᵀ − W_L⋯W_1‖_F² (the whitened population loss up to a constant).

    GD tracks gradient flow to O(lr) in time; at these lr the largest deviation measured is about
    0.35% of max s, against the 1% allowed.
    """
    s_sim, seed = np.array([2.0, 1.8, 1.6, 1.4, 1.2, 1.0]), 0
    steps = int(round(8.0 / lr))  # up to t = 8, past every mode's transition
    gen = torch.Generator().manual_seed(seed)
    d = s_sim.size
    u, v = random_orthogonal(d, gen), random_orthogonal(d, gen)
    target = u @ torch.diag(torch.as_tensor(s_sim)) @ v.T
    # Balanced aligned init: W_l = R_l diag(a₀^{1/L}) R_{l-1}ᵀ with R_0 = V, R_L = U.
    bases = [v] + [random_orthogonal(d, gen) for _ in range(depth - 1)] + [u]
    w = a0 ** (1.0 / depth) * torch.eye(d, dtype=torch.float64)
    weights = [(bases[k + 1] @ w @ bases[k].T).requires_grad_(True) for k in range(depth)]
    opt = torch.optim.SGD(weights, lr=lr)
    record_every = 20
    measured = []
    for step in range(steps + 1):
        product = weights[0]
        for layer in weights[1:]:
            product = layer @ product
        if step % record_every == 0:
            measured.append(torch.diagonal(u.T @ product.detach() @ v).numpy().copy())
        if step == steps:
            break
        opt.zero_grad()
        (0.5 * (target - product).pow(2).sum()).backward()
        opt.step()
    times = lr * np.arange(0, steps + 1, record_every)  # t = lr × steps
    predicted = mode_trajectories(s_sim, times, depth=depth, init_strength=a0)
    assert np.all(predicted[-1] > 0.99 * s_sim)  # the run covers every mode's transition
    np.testing.assert_allclose(np.array(measured), predicted, rtol=0, atol=0.01 * s_sim.max())


def test_validation_names_the_bad_value():
    with pytest.raises(ConfigError, match="depth must be an integer >= 2"):
        mode_trajectories(S, [0.0], depth=1, init_strength=1e-3)
    with pytest.raises(ConfigError, match="depth must be an integer >= 2"):
        mode_trajectories(S, [0.0], depth=2.0, init_strength=1e-3)
    with pytest.raises(ConfigError, match="singular_values must be"):
        mode_trajectories([1.0, -1.0], [0.0], depth=2, init_strength=1e-3)
    with pytest.raises(ConfigError, match="singular_values must be"):
        mode_trajectories([1.0, np.inf], [0.0], depth=2, init_strength=1e-3)
    with pytest.raises(ConfigError, match="init_strength must satisfy"):
        mode_trajectories(S, [0.0], depth=2, init_strength=1.5)
    with pytest.raises(ConfigError, match="init_strength must satisfy"):
        mode_trajectories(S, [0.0], depth=2, init_strength=0.0)
    with pytest.raises(ConfigError, match="times must be"):
        mode_trajectories(S, [1.0, 0.5], depth=3, init_strength=1e-3)
    with pytest.raises(ConfigError, match="times must be"):
        mode_trajectories(S, [-1.0], depth=3, init_strength=1e-3)
    with pytest.raises(ConfigError, match="fraction must be in"):
        mode_learning_times(S, depth=2, init_strength=1e-3, fraction=1.0)


@pytest.mark.parametrize(
    ("layers", "message"),
    [([], "at least 2 weight matrices"), ([np.ones((5, 4))], "at least 2 weight matrices"),
     ([np.ones((5, 4)), np.ones((3, 6))], "layers must be matrices that chain")],
    ids=["no-layers", "one-layer", "shapes-do-not-chain"],
)
def test_effective_init_strength_refuses_bad_layers(layers, message):
    from lmech.theory import effective_init_strength

    with pytest.raises(ConfigError, match=message):
        effective_init_strength(layers, np.eye(3)[:, :2], np.eye(4)[:, :2])
