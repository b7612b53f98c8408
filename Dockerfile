# BPTT Explorer: a self-contained image (no internet needed at run time).
#   docker build -t bptt-explorer .
#   docker run -p 8000:8000 -e BPTT_WORKERS=2 bptt-explorer
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    BPTT_HOST=0.0.0.0 BPTT_PORT=8000 BPTT_WORKERS=2 \
    OPENBLAS_NUM_THREADS=1
WORKDIR /srv/bptt
COPY pyproject.toml README.md ./
COPY app ./app
COPY static ./static
COPY templates ./templates
RUN pip install -e . && useradd --system --uid 10001 --home-dir /srv/bptt bptt
USER bptt
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"BPTT_PORT\",\"8000\")}/healthz', timeout=2)"
CMD ["bptt-explorer"]
