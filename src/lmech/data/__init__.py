"""Datasets that ship offline."""

from .digits import Split as Split
from .digits import load_digits as load_digits
from .scaling import ScalingData as ScalingData
from .scaling import load_scaling_dataset as load_scaling_dataset
from .scaling import read_scaling_csv as read_scaling_csv
from .scaling import scaling_datasets as scaling_datasets

__all__ = ["Split", "load_digits", "ScalingData", "load_scaling_dataset", "read_scaling_csv", "scaling_datasets"]
