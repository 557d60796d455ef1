"""What an operator's tools read: the worker's heartbeat, /healthz and /readyz, and Prometheus metrics at /metrics."""
