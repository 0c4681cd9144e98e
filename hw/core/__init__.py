"""The training core (training_core.py) and the components it is composed of."""

from .training_core import Op, TrainingCore

__all__ = ["TrainingCore", "Op"]
