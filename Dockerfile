FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DATA_DIR=/data \
    HEALTH_PORT=8080

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
RUN pip install ".[postgres]" \
    && useradd --create-home --uid 10001 nanobot \
    && mkdir -p /data && chown nanobot:nanobot /data

USER nanobot
VOLUME ["/data"]
EXPOSE 8080
# GET /healthz: 200 when the gateway is connected and the database answers (no curl in the slim image).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request as u; p = os.environ.get('HEALTH_PORT'); p and u.urlopen(f'http://127.0.0.1:{p}/healthz', timeout=4)"
ENTRYPOINT ["python", "-m", "bot"]
CMD ["run"]
