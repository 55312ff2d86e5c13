"""The robot image: build context, Docker build / smoke test / save / push, and the model server.

``builder`` imports ``core`` only (never streamlit); the docker SDK is imported lazily so that
``import builder`` works where no Docker engine (or SDK) exists.
"""
