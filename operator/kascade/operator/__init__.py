"""The Kubernetes operator: kopf handlers that observe Runs, Tasks and Jobs, decide with
the engine, and act through the Kubernetes API."""
