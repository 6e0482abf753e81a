"""Hidden Markov processes: Mess3's matrices, the stationary distribution, belief states against a brute-force
posterior over hidden paths, factorisation of product-process beliefs, and sampled frequencies against the
stationary predictions."""

import itertools
import math

import pytest
import torch

from lmech.data.hmm import HMM, ProductProcess, mess3
from lmech.errors import ConfigError


def random_hmm(num_tokens, num_states, seed, sparsity=0.0):
    """A random HMM: Dirichlet-like rows over (token, next state), some entries zeroed."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.rand(num_tokens, num_states, num_states, generator=gen, dtype=torch.float64) + 0.05
    if sparsity:
        t = t * (torch.rand(t.shape, generator=gen, dtype=torch.float64) > sparsity)
        t[0].fill_diagonal_(1.0)  # keep every row non-empty and the chain aperiodic
    return HMM(t / t.sum(dim=(0, 2), keepdim=True), name=f"random{seed}")


def brute_force_posteriors(hmm, tokens):
    """P(s_t | x_{1:t}) for every prefix of one sequence, by summing π(s_0) Π T[x_t, s_{t-1}, s_t] over all paths."""
    t, s = hmm.transitions, hmm.num_states
    start = hmm.start()
    out = [start]
    for length in range(1, len(tokens) + 1):
        post = torch.zeros(s, dtype=torch.float64)
        for path in itertools.product(range(s), repeat=length + 1):
            w = start[path[0]]
            for i in range(length):
                w = w * t[tokens[i], path[i], path[i + 1]]
            post[path[-1]] += w
        out.append(post / post.sum())
    return torch.stack(out), math.log(float(post.sum()))


def test_mess3_matrices_match_the_published_form():
    """T^(A) = [[αy, βx, βx], [αx, βy, βx], [αx, βx, βy]] and cyclic permutations (Shai et al. 2024)."""
    x, a = 0.05, 0.85
    b, y = (1 - a) / 2, 1 - 2 * x
    expect = torch.tensor([
        [[a * y, b * x, b * x], [a * x, b * y, b * x], [a * x, b * x, b * y]],
        [[b * y, a * x, b * x], [b * x, a * y, b * x], [b * x, a * x, b * y]],
        [[b * y, b * x, a * x], [b * x, b * y, a * x], [b * x, b * x, a * y]],
    ], dtype=torch.float64)
    torch.testing.assert_close(mess3(x, a).transitions, expect, atol=1e-15, rtol=0)


def test_stationary_distribution():
    torch.testing.assert_close(mess3().stationary(), torch.full((3,), 1 / 3, dtype=torch.float64))
    hmm = random_hmm(2, 4, seed=5)
    pi = hmm.stationary()
    torch.testing.assert_close(pi @ hmm.state_transition, pi, atol=1e-13, rtol=0)
    limit = torch.linalg.matrix_power(hmm.state_transition, 2000)[0]  # power iteration from state 0
    torch.testing.assert_close(pi, limit, atol=1e-12, rtol=0)
    assert float(pi.max() - pi.min()) > 0.01, "the test HMM should have a non-uniform stationary distribution"


@pytest.mark.parametrize("make", [lambda: mess3(), lambda: random_hmm(2, 3, seed=1, sparsity=0.4),
                                  lambda: HMM(random_hmm(3, 2, seed=2).transitions, torch.tensor([0.9, 0.1]))],
                         ids=["mess3", "sparse-random", "random-with-initial"])
def test_beliefs_match_brute_force_posterior(make):
    hmm = make()
    tokens, _ = hmm.sample(6, 5, seed=11)
    beliefs, logp = hmm.beliefs(tokens), hmm.log_prob(tokens)
    assert beliefs.shape == (6, 6, hmm.num_states)
    for i in range(6):
        post, brute_logp = brute_force_posteriors(hmm, tokens[i].tolist())
        torch.testing.assert_close(beliefs[i], post, atol=1e-13, rtol=0)
        assert float(logp[i]) == pytest.approx(brute_logp, rel=1e-12)


def test_next_token_probabilities_sum_to_one_and_match_the_joint():
    hmm = mess3()
    tokens, _ = hmm.sample(3, 4, seed=0)
    beliefs = hmm.beliefs(tokens)
    probs = hmm.next_token_probs(beliefs)
    torch.testing.assert_close(probs.sum(-1), torch.ones(3, 5, dtype=torch.float64))
    # P(x_{t+1} | x_{1:t}) = P(x_{1:t+1}) / P(x_{1:t})
    for t in range(1, 4):
        ratio = (hmm.log_prob(tokens[:, :t + 1]) - hmm.log_prob(tokens[:, :t])).exp()
        torch.testing.assert_close(probs[torch.arange(3), t, tokens[:, t]], ratio)


def test_product_beliefs_factorise():
    proc = ProductProcess((mess3(), random_hmm(2, 2, seed=3)))
    assert proc.num_tokens == 6
    tokens, states = proc.sample(20, 6, seed=4)
    assert tokens.shape == (20, 6) and states.shape == (20, 7, 2) and int(tokens.max()) < 6
    joint = proc.as_hmm().beliefs(tokens)  # Bayes filter on the 6-state product chain
    torch.testing.assert_close(proc.beliefs(tokens), joint, atol=1e-13, rtol=0)
    f1, f2 = proc.factor_beliefs(tokens)
    torch.testing.assert_close((f1[..., :, None] * f2[..., None, :]).flatten(-2), joint, atol=1e-13, rtol=0)
    post, _ = brute_force_posteriors(proc.as_hmm(), tokens[0, :3].tolist())
    torch.testing.assert_close(joint[0, :4], post, atol=1e-13, rtol=0)


def test_joint_tokens_round_trip():
    proc = ProductProcess((mess3(), mess3(), random_hmm(2, 2, seed=0)))
    parts = torch.tensor([[2, 0, 1], [1, 2, 0]])
    assert proc.join_tokens(parts).tolist() == [2 * 6 + 0 * 2 + 1, 1 * 6 + 2 * 2 + 0]
    assert torch.equal(proc.split_tokens(proc.join_tokens(parts)), parts)


def within(count, n, p, sigmas=5.0):
    return abs(count / n - p) <= sigmas * math.sqrt(p * (1 - p) / n)


def test_sampled_token_and_pair_frequencies_match_stationary_predictions():
    hmm = mess3()
    tokens, _ = hmm.sample(2000, 12, seed=7)
    n = tokens.numel()
    for x in range(3):  # P(x) = π T^(x) 1 = 1/3
        assert within(int((tokens == x).sum()), n, 1 / 3)
    pi, t = hmm.stationary(), hmm.transitions
    ones = torch.ones(3, dtype=torch.float64)
    pairs = tokens[:, :-1] * 3 + tokens[:, 1:]
    for a, b in itertools.product(range(3), repeat=2):  # P(x_t = a, x_{t+1} = b) = π T^(a) T^(b) 1
        p = float(pi @ t[a] @ t[b] @ ones)
        assert within(int((pairs == 3 * a + b).sum()), pairs.numel(), p)
    same = sum(float(pi @ t[a] @ t[a] @ ones) for a in range(3))
    assert same > 0.45, "Mess3 tokens repeat more often than independent draws (1/3)"


def test_sampled_states_follow_the_stationary_distribution_and_allowed_transitions():
    hmm = random_hmm(2, 3, seed=1, sparsity=0.4)
    tokens, states = hmm.sample(1500, 10, seed=2)
    pi = hmm.stationary()
    for s in range(3):
        assert within(int((states == s).sum()), states.numel(), float(pi[s]))
    weights = hmm.transitions[tokens, states[:, :-1], states[:, 1:]]
    assert bool((weights > 0).all()), "a sampled step has probability 0"


def test_sampling_is_seeded():
    hmm = mess3()
    a = hmm.sample(10, 8, seed=3)[0]
    assert torch.equal(a, hmm.sample(10, 8, seed=3)[0])
    assert torch.equal(a, hmm.sample(10, 8, generator=torch.Generator().manual_seed(3))[0])
    assert not torch.equal(a, hmm.sample(10, 8, seed=4)[0])


def test_bad_input_raises_config_error():
    with pytest.raises(ConfigError, match="must be 1"):
        HMM(torch.full((2, 2, 2), 0.3, dtype=torch.float64))
    with pytest.raises(ConfigError, match="x must be in"):
        mess3(x=0.6)
    with pytest.raises(ConfigError, match="alpha must be in"):
        mess3(alpha=1.0)
    hmm = HMM(torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]]]), torch.tensor([1.0, 0.0]))
    with pytest.raises(ConfigError, match="probability 0"):
        hmm.beliefs(torch.tensor([[0, 1]]))
    with pytest.raises(ConfigError, match="reducible"):
        hmm.stationary()
    with pytest.raises(ConfigError, match="tokens must lie"):
        mess3().beliefs(torch.tensor([[0, 3]]))
    with pytest.raises(ConfigError, match="either seed or generator"):
        mess3().sample(2, 2, seed=1, generator=torch.Generator())
    with pytest.raises(ConfigError, match=r"integers ≥ 1, got 2.5 and 3"):
        mess3().sample(2.5, 3)
