"""Edge TPU runtime of the studio: preflight, compiler, devices, interpreter, adapters, predictor.

Imports only the standard library, numpy, PIL, ``core.data.boxes``/``core.data.annotations``/``core.data.artefacts``
and, lazily, ``ai_edge_litert`` / ``tflite`` / ``pycoral`` — never TensorFlow or streamlit — so the
builder can ship it into the robot image.
"""
