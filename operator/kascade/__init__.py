"""kascade: a Kubernetes operator for data flows."""

__version__ = "0.1.0"
