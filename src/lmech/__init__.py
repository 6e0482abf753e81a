"""lmech: learning mechanics, the physics of deep learning, as executable predictions."""

__version__ = "0.1.0"
