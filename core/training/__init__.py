"""The training room: hyperparameters, data pipelines, trainers (classification, detection), int8
TFLite conversion (``int8``), evaluation (``evaluation``), reports and the "train" job kind.
Imports core.data, core.jobs and core.config; TensorFlow only lazily; never anything above core.
"""
