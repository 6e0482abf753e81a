"""Lanczos on the full edge-of-stability network against ARPACK (``scipy.sparse.linalg.eigsh``), an
independent implementation driven by the same Hessian-vector products."""

import numpy as np
import pytest
import torch
from scipy.sparse.linalg import LinearOperator, eigsh

from lmech.data import load_digits
from lmech.measure import HessianOperator, hessian_eigenvalues
from lmech.models import mlp


def half_mse(out, y):
    return 0.5 * ((out - y) ** 2).sum(1).mean()


@pytest.mark.slow
def test_top_eigenvalues_of_a_trained_eos_network_match_arpack():
    train, _ = load_digits(500, 0, seed=0, dtype=torch.float64)
    model = mlp(64, [200, 200], 10, seed=0, dtype=torch.float64)  # 55,210 parameters
    optimizer = torch.optim.SGD(model.parameters(), lr=0.3)
    for _ in range(150):  # past the first crossing of 2/η: the top eigenvalues cluster
        optimizer.zero_grad()
        half_mse(model(train.inputs), train.onehot).backward()
        optimizer.step()
    data = (train.inputs, train.onehot)
    ours = hessian_eigenvalues(model, half_mse, data, k=3, num_matvecs=300, tol=1e-10)
    op = HessianOperator(model, half_mse, data)
    with torch.no_grad():
        linear = LinearOperator((op.num_params,) * 2, matvec=lambda v: op.matvec(torch.from_numpy(np.ravel(v))).numpy(),
                                dtype=np.float64)
        reference = np.sort(eigsh(linear, k=3, which="LA", tol=1e-12)[0])[::-1]
    np.testing.assert_allclose(ours.numpy(), reference, rtol=1e-8)
