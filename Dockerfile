# syntax=docker/dockerfile:1
# Build: docker build -t llm-gateway .
# Run:   docker run -p 8080:8080 -v $PWD/config.toml:/etc/gateway/config.toml \
#          -e REDIS_URL=redis://redis:6379/0 llm-gateway
# The port is [server] port in the config, or GATEWAY_PORT (e.g. -e GATEWAY_PORT=9000 -p 9000:9000);
# the HEALTHCHECK (`gateway healthcheck`) reads the same config and environment, so it follows.
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
# GATEWAY_HOST: listen on every interface of the container (it overrides [server] host).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GATEWAY_CONFIG=/etc/gateway/config.toml \
    GATEWAY_HOST=0.0.0.0
WORKDIR /var/lib/gateway
USER gateway
# The default port; another one ([server] port or GATEWAY_PORT) needs its own -p mapping.
EXPOSE 8080
# GET /healthz on the address `gateway serve` listens on, from the same config and environment.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["gateway", "healthcheck", "--timeout", "3"]
ENTRYPOINT ["gateway", "serve"]
