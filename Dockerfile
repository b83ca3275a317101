# syntax=docker/dockerfile:1
# Build: docker build -t llm-gateway .
# Run:   docker run -p 8080:8080 -v $PWD/config.toml:/etc/gateway/config.toml \
#          -e REDIS_URL=redis://redis:6379/0 llm-gateway
FROM python:3.12-slim AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends gcc make && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY fake_providers ./fake_providers
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir --upgrade pip \
    && /opt/venv/bin/pip install --no-cache-dir .

FROM python:3.12-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/gateway --create-home gateway
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GATEWAY_CONFIG=/etc/gateway/config.toml
WORKDIR /var/lib/gateway
USER gateway
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"
ENTRYPOINT ["gateway", "serve"]
CMD ["--host", "0.0.0.0", "--port", "8080"]
