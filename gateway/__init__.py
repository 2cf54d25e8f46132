"""The gateway: the HTTP API (OpenAPI), the web app, and /healthz and /metrics."""
