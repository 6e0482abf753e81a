"""Training: the loop, vmapped ensembles of small models, monitors, gradient flow and long-form records."""

from .ensemble import train_ensemble as train_ensemble
from .flow import gradient_flow as gradient_flow
from .loop import OPTIMIZERS as OPTIMIZERS
from .loop import Monitor as Monitor
from .loop import TrainConfig as TrainConfig
from .loop import make_optimizer as make_optimizer
from .loop import train as train
from .losses import half_mse as half_mse
from .monitors import LossMonitor as LossMonitor
from .monitors import SharpnessMonitor as SharpnessMonitor
from .records import Records as Records

__all__ = [
    "OPTIMIZERS", "LossMonitor", "Monitor", "Records", "SharpnessMonitor", "TrainConfig",
    "gradient_flow", "half_mse", "make_optimizer", "train", "train_ensemble",
]
