"""StackedMLP and StackedAdam against one nn.Module per member trained by torch.optim."""

import pytest
import torch

from lmech.errors import ConfigError
from lmech.models import mlp
from lmech.train.stacked import StackedAdam, StackedMLP, half_squared_error


@pytest.fixture
def data():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(40, 5, generator=gen, dtype=torch.float64), torch.randn(40, 3, generator=gen, dtype=torch.float64)


@pytest.mark.parametrize(("optimizer", "activation"), [("sgd", "tanh"), ("adam", "tanh"), ("adam", "relu")])
def test_members_train_as_their_own_modules(data, optimizer, activation):
    x, y = data
    models = [mlp(5, [7, 6], 3, activation=activation, seed=s, dtype=torch.float64) for s in range(3)]
    net = StackedMLP(models)
    adam = StackedAdam(net, lr=0.01, betas=(0.8, 0.99), eps=1e-8) if optimizer == "adam" else None
    opts = [torch.optim.Adam(m.parameters(), lr=0.01, betas=(0.8, 0.99), eps=1e-8) if adam
            else torch.optim.SGD(m.parameters(), lr=0.1) for m in models]
    for step in range(5):
        idx = torch.arange(step, step + 8)
        grads = net.gradients(x[idx], y[idx])
        if adam:
            adam.step(grads)
        else:
            with torch.no_grad():
                for leaf, g in zip(net.leaves, grads):
                    leaf -= 0.1 * g
        for model, opt in zip(models, opts):
            opt.zero_grad()
            half_squared_error(model(x[idx]), y[idx]).backward()
            opt.step()
    for i, model in enumerate(models):
        torch.testing.assert_close(net.member_vector(i), torch.nn.utils.parameters_to_vector(model.parameters()))
        torch.testing.assert_close(net.losses(x, y)[i], half_squared_error(model(x), y))


def test_only_tanh_or_relu_mlps_stack():
    with pytest.raises(ConfigError, match="got GELU at '1'"):
        StackedMLP([mlp(5, [7], 3, activation="gelu")])
    with pytest.raises(ConfigError, match="one activation throughout"):
        StackedMLP([mlp(5, [7], 3, activation="relu"), mlp(5, [7], 3, activation="tanh")])
    with pytest.raises(ConfigError, match="share their layer shapes"):
        StackedMLP([mlp(5, [7], 3), mlp(5, [8], 3)])
