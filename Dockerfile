# The studio itself as a container:
#   docker build -t edgetpu-studio .
#   docker run -p 8501:8501 -v studio-data:/data -e STUDIO_PASSWORD=choose-one edgetpu-studio
# then open http://localhost:8501 (inside the container the app listens on 0.0.0.0:8501).
#
# BASE_IMAGE must provide python3 (3.11) with pip; the default is the official slim image.
# Offline builds: put wheels in ./wheelhouse first (pip download -r requirements.txt -d wheelhouse
# --only-binary=:all:); when the context has them, pip installs from them only (--no-index).
ARG BASE_IMAGE=python:3.11-slim-bookworm

# -- the Python packages, in their own stage (the wheels never reach the final image) ---------
FROM ${BASE_IMAGE} AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# optional: a mirror of PyPI (docker build --build-arg PIP_INDEX_URL=https://mirror.example/simple)
ARG PIP_INDEX_URL
# "wheelhouse*" may match nothing: then only requirements.txt is copied
COPY requirements.txt wheelhouse* /tmp/req/
RUN set -e; \
    if ls /tmp/req/*.whl >/dev/null 2>&1; then source="--no-index --find-links=/tmp/req"; else source=""; fi; \
    python3 -m pip install $source --target=/opt/studio/site-packages -r /tmp/req/requirements.txt

# -- the studio ----------------------------------------------------------------------------
FROM ${BASE_IMAGE}
ENV PYTHONPATH=/opt/studio/site-packages PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 STUDIO_DATA_DIR=/data
COPY --from=deps /opt/studio/site-packages/ /opt/studio/site-packages/
WORKDIR /app
COPY .streamlit ./.streamlit
COPY app.py ./
COPY pages ./pages
COPY core ./core
COPY cli ./cli
COPY coral_runtime ./coral_runtime
COPY builder ./builder
EXPOSE 8501
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
  CMD python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"
CMD ["python3", "-m", "streamlit", "run", "app.py", "--server.address", "0.0.0.0", "--server.port", "8501"]
