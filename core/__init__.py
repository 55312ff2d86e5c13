"""Edge TPU Retraining Studio core: data model, store, formats, training, export.

Pure Python; never imports streamlit. TensorFlow is imported lazily inside
``core.training`` and ``core.export`` so that ``import core`` stays fast.
"""

__version__ = "0.1.0"
