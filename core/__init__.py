"""Edge TPU Retraining Studio core, the ground floor: rooms ``data/`` (data model, store, formats),
``jobs/`` (job table, runners) and ``training/`` (trainers, int8 conversion, evaluation).

Pure Python; never imports streamlit, coral_runtime, builder or cli. TensorFlow is imported lazily
inside ``core.training`` so that ``import core`` stays fast. See docs/ARCHITECTURE.md.
"""

from core import _moved

__version__ = "0.1.0"

_moved.install()
