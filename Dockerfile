# The studio itself as a container:  docker build -t edgetpu-studio . && docker run -p 8501:8501 -v studio-data:/data edgetpu-studio
# BASE_IMAGE must provide python3 (3.11) with pip; the default is the official slim image.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STUDIO_DATA_DIR=/data
WORKDIR /app
COPY requirements.txt .
RUN python3 -m pip install --break-system-packages -r requirements.txt
COPY .streamlit ./.streamlit
COPY app.py ./
COPY pages ./pages
COPY core ./core
COPY coral_runtime ./coral_runtime
COPY builder ./builder
EXPOSE 8501
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
  CMD python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"
CMD ["python3", "-m", "streamlit", "run", "app.py", "--server.address", "0.0.0.0", "--server.port", "8501"]
