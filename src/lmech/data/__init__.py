"""Datasets that ship offline."""

from .digits import Split as Split
from .digits import load_digits as load_digits
from .groups import FiniteGroup as FiniteGroup
from .groups import GroupComposition as GroupComposition
from .groups import Irrep as Irrep
from .groups import composition_dataset as composition_dataset
from .groups import cyclic as cyclic
from .groups import dihedral as dihedral
from .groups import fourier_template as fourier_template
from .groups import group_from_name as group_from_name
from .groups import regular_encoding as regular_encoding
from .groups import symmetric3 as symmetric3
from .hmm import HMM as HMM
from .hmm import ProductProcess as ProductProcess
from .hmm import mess3 as mess3
from .modular import OPERATIONS as OPERATIONS
from .modular import ModularSplit as ModularSplit
from .modular import modular_arithmetic as modular_arithmetic
from .scaling import ScalingData as ScalingData
from .scaling import load_scaling_dataset as load_scaling_dataset
from .scaling import read_scaling_csv as read_scaling_csv
from .scaling import scaling_datasets as scaling_datasets

__all__ = [
    "HMM", "OPERATIONS", "FiniteGroup", "GroupComposition", "Irrep", "ModularSplit", "ProductProcess", "ScalingData",
    "Split", "composition_dataset", "cyclic", "dihedral", "fourier_template", "group_from_name", "load_digits",
    "load_scaling_dataset", "mess3", "modular_arithmetic", "read_scaling_csv", "regular_encoding", "scaling_datasets",
    "symmetric3",
]
