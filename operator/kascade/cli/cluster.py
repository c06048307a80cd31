"""Talking to a cluster from the CLI: the client, the namespace, and reading a run."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, cast

import click
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from kascade.engine.errors import KascadeError
from kascade.engine.naming import label_value
from kascade.operator.labels import GROUP, PLAN_INDEX, RUN, VERSION

kubeconfig_option = click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False),
    envvar="KUBECONFIG",
    help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster).",
)
namespace_option = click.option(
    "-n", "--namespace", help="Namespace (default: the kubeconfig context's, else default)."
)


class ClusterError(KascadeError):
    """A cluster answer a command cannot go on from; the message says what and where."""


def api_error(err: ApiException) -> ClusterError:
    """An API error as one readable line."""
    try:
        message = json.loads(err.body or "").get("message", err.reason)
    except (TypeError, ValueError, AttributeError):
        message = err.reason
    return ClusterError(f"{message} (HTTP {err.status})")


@dataclass
class Cluster:
    """The API clients and namespace a command works with."""

    api: client.ApiClient
    namespace: str

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    def get(self, plural: str, name: str) -> dict[str, Any]:
        try:
            found = cast(
                dict[str, Any],
                self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, plural, name
                ),
            )
        except ApiException as err:
            if err.status == 404:
                raise ClusterError(
                    f"{plural[:-1]} `{name}` not found in namespace {self.namespace}"
                ) from err
            raise api_error(err) from err
        return found

    def run_tasks(self, run: str) -> list[dict[str, Any]]:
        """The Task objects of a run, in plan order."""
        try:
            answer = cast(
                dict[str, Any],
                self.custom.list_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    self.namespace,
                    "tasks",
                    label_selector=f"{RUN}={label_value(run)}",
                ),
            )
        except ApiException as err:
            raise api_error(err) from err
        items: list[dict[str, Any]] = answer.get("items", [])
        return sorted(
            items, key=lambda t: int((t["metadata"].get("annotations") or {}).get(PLAN_INDEX, 0))
        )


def connect(kubeconfig: str | None, namespace: str | None) -> Cluster:
    """Clients for the cluster the kubeconfig (or the pod's service account) names."""
    try:
        if kubeconfig is None:
            try:
                config.load_incluster_config()  # type: ignore[no-untyped-call]
                api = client.ApiClient()
                return Cluster(api, namespace or _in_cluster_namespace())
            except config.ConfigException:
                pass
        api = config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        if namespace is None:
            _, current = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
            namespace = (current or {}).get("context", {}).get("namespace") or "default"
    except (config.ConfigException, OSError) as err:
        raise ClusterError(f"cannot reach a cluster: {err}") from err
    return Cluster(api, namespace)


def _in_cluster_namespace() -> str:
    try:
        with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace", encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return "default"


def decode(value: str) -> bytes:
    """ConfigMap binaryData values are base64."""
    return base64.b64decode(value)
