"""Reference models of the negative-feedback learner.

:mod:`~nfloop.model.config` is the learner config shared with the HDL;
:mod:`~nfloop.model.fixed` is the bit-level contract; :mod:`~nfloop.model.floating`
the float model; :mod:`~nfloop.model.train` runs either as the loop or as
gradient descent.
"""

from .config import (
                     Activation,
                     ActivationKind,
                     AdaptiveGain,
                     ConfigError,
                     Formats,
                     Layer,
                     LearnerConfig,
                     QFormat,
                     Rounding,
                     Window,
                     load_config,
                     save_config,
)
from .fixed import FixedLearner
from .floating import FloatLearner
from .tasks import Task, TaskError, default_config, load_task
from .train import train

__all__ = ["ActivationKind", "Activation", "AdaptiveGain", "ConfigError", "Formats", "Layer", "LearnerConfig",
           "QFormat", "Rounding", "Window", "load_config", "save_config", "FixedLearner", "FloatLearner", "Task",
           "TaskError", "load_task", "default_config", "train"]
