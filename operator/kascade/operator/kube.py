"""The Kubernetes API as the operator uses it: a few async calls over the official client
(run in threads), with AlreadyExists and NotFound turned into plain answers."""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from kascade.operator.labels import GROUP, VERSION
from kascade.operator.metrics import Metrics

log = logging.getLogger("kascade.operator")

T = TypeVar("T")


class KubeError(Exception):
    """An API answer the operator cannot treat as normal; carries status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    @property
    def permanent(self) -> bool:
        """Whether asking again cannot help: a 4xx answer other than a conflict (409),
        a timeout (408) or throttling (429)."""
        return 400 <= self.status < 500 and self.status not in (408, 409, 429)


def passing(err: BaseException) -> bool:
    """Whether an error may pass with time (the API server unreachable or overloaded, a
    conflict): worth retrying, unlike a refusal or a mistake in what was sent."""
    if isinstance(err, KubeError):
        return not err.permanent
    return isinstance(err, OSError | TimeoutError | HTTPError)


def api_client(kubeconfig: str | None = None, connections: int = 32) -> client.ApiClient:
    """A client for the cluster (in-cluster credentials, else the kubeconfig) with a
    connection pool large enough for the operator's concurrent calls."""
    settings = client.Configuration()
    loaded = False
    if kubeconfig is None:
        try:
            config.load_incluster_config(client_configuration=settings)  # type: ignore[no-untyped-call]
            loaded = True
        except config.ConfigException:
            pass
    if not loaded:
        config.load_kube_config(config_file=kubeconfig, client_configuration=settings)  # type: ignore[no-untyped-call]
    settings.connection_pool_maxsize = connections
    return client.ApiClient(settings)


def _message(err: ApiException) -> str:
    import json

    try:
        return str(json.loads(err.body or "").get("message", err.reason))
    except (TypeError, ValueError, AttributeError):
        return str(err.reason)


_CORE_RESOURCES = {"job": "jobs", "config_map": "configmaps", "event": "events"}


def request_labels(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[str, str]:
    """The verb and resource of a client call, for the request counter: the client's
    method names say both (`patch_namespaced_custom_object_status`: patch runs/status)."""
    name = getattr(fn, "__name__", "call")
    verb, _, rest = name.partition("_")
    verb = "get" if verb == "read" else verb
    if "custom_object" in rest:
        resource = str(args[3]) if len(args) > 3 else "custom"
        return verb, resource + ("/status" if rest.endswith("_status") else "")
    kind = rest.removeprefix("namespaced_")
    return verb, _CORE_RESOURCES.get(kind, kind)


class Kube:
    """Async access to the few resources kascade reads and writes."""

    def __init__(
        self, api: client.ApiClient, concurrency: int = 16, metrics: Metrics | None = None
    ) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.batch = client.BatchV1Api(api)
        self.core = client.CoreV1Api(api)
        self._slots = asyncio.Semaphore(concurrency)
        self._threads = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="kube")
        self.calls = 0
        self.metrics = metrics

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        async with self._slots:
            self.calls += 1
            call = functools.partial(fn, *args, **kwargs)
            code: int | str = "error"
            try:
                answer = await asyncio.get_running_loop().run_in_executor(self._threads, call)
                status = getattr(answer, "status", None)  # a raw response's HTTP status
                code = status if isinstance(status, int) else 200
                return answer
            except ApiException as err:
                code = err.status or "error"
                raise KubeError(err.status or 0, _message(err)) from err
            finally:
                if self.metrics is not None:
                    self.metrics.api_request(*request_labels(fn, args), code)

    async def _send(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """A write whose answer is not needed: skip decoding it (the client's model
        decoding costs more than the request)."""
        response = await self._call(fn, *args, _preload_content=False, **kwargs)
        # Read the whole answer before the connection goes back to the pool: a connection
        # with unread bytes would hand them to the next request.
        await asyncio.get_running_loop().run_in_executor(self._threads, response.read)
        response.release_conn()

    async def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A kascade object, or None when it does not exist."""
        try:
            found = await self._call(
                self.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, plural, name
            )
            return cast(dict[str, Any], found)
        except KubeError as err:
            if err.status == 404:
                return None
            raise

    async def list(self, plural: str, namespace: str, selector: str) -> list[dict[str, Any]]:
        """kascade objects matching a label selector."""
        answer = await self._call(
            self.custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            plural,
            label_selector=selector,
        )
        return list(cast(dict[str, Any], answer).get("items", []))

    async def create(self, plural: str, namespace: str, body: dict[str, Any]) -> bool:
        """Create a kascade object; False when it already exists (not an error)."""
        try:
            await self._send(
                self.custom.create_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                plural,
                body,
            )
        except KubeError as err:
            if err.status == 409:
                return False
            raise
        return True

    async def _patch(
        self, fn: Callable[..., Any], plural: str, namespace: str, name: str, body: dict[str, Any]
    ) -> bool:
        try:
            await self._send(fn, GROUP, VERSION, namespace, plural, name, body)
        except KubeError as err:
            if err.status == 404:
                return False
            raise
        return True

    async def patch_status(
        self, plural: str, namespace: str, name: str, status: dict[str, Any]
    ) -> bool:
        """Merge-patch an object's status; False when the object is gone."""
        return await self._patch(
            self.custom.patch_namespaced_custom_object_status,
            plural,
            namespace,
            name,
            {"status": status},
        )

    async def patch_spec(
        self, plural: str, namespace: str, name: str, spec: dict[str, Any]
    ) -> bool:
        """Merge-patch an object's spec; False when the object is gone."""
        return await self._patch(
            self.custom.patch_namespaced_custom_object, plural, namespace, name, {"spec": spec}
        )

    async def patch_metadata(
        self, plural: str, namespace: str, name: str, metadata: dict[str, Any]
    ) -> bool:
        """Merge-patch an object's metadata (a None value removes a key); False when gone."""
        return await self._patch(
            self.custom.patch_namespaced_custom_object,
            plural,
            namespace,
            name,
            {"metadata": metadata},
        )

    async def delete(self, plural: str, namespace: str, name: str) -> None:
        """Delete a kascade object and (in the background) what it owns; gone is fine."""
        try:
            await self._send(
                self.custom.delete_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                plural,
                name,
                propagation_policy="Background",
            )
        except KubeError as err:
            if err.status != 404:
                raise

    async def create_job(self, namespace: str, body: dict[str, Any]) -> bool:
        """Create a Job; False when it already exists."""
        try:
            await self._send(self.batch.create_namespaced_job, namespace, body)
        except KubeError as err:
            if err.status == 409:
                return False
            raise
        return True

    async def delete_job(self, namespace: str, name: str) -> None:
        """Delete a Job and (in the background) its pods; gone already is fine."""
        try:
            await self._send(
                self.batch.delete_namespaced_job,
                name,
                namespace,
                propagation_policy="Background",
            )
        except KubeError as err:
            if err.status != 404:
                raise

    async def config_map_binary(self, namespace: str, name: str, key: str) -> bytes | None:
        """One binary key of a ConfigMap; None when the ConfigMap or the key is missing."""
        try:
            found = await self._call(self.core.read_namespaced_config_map, name, namespace)
        except KubeError as err:
            if err.status == 404:
                return None
            raise
        value = (found.binary_data or {}).get(key)
        return base64.b64decode(value) if value is not None else None

    async def event(
        self, involved: dict[str, Any], kind: str, reason: str, message: str, warning: bool = False
    ) -> None:
        """Post a core/v1 Event about an object (best effort: a failure is not an error)."""
        meta = involved["metadata"]
        now = datetime.now(UTC)
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": involved.get("apiVersion", f"{GROUP}/{VERSION}"),
                "kind": kind,
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
            },
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": "kascade-operator"},
            "firstTimestamp": now.isoformat(),
            "lastTimestamp": now.isoformat(),
            "count": 1,
        }
        try:
            await self._send(self.core.create_namespaced_event, meta["namespace"], body)
        except Exception as err:  # a refusal, or the API server away: the Event is lost
            if not (isinstance(err, KubeError) or passing(err)):
                raise
            log.debug("event-lost reason=%s error=%s", reason, err)
