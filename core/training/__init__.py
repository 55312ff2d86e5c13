"""Training: hyperparameters, data pipelines and trainers (TensorFlow imported lazily)."""
