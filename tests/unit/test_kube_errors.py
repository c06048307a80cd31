"""Which API errors the operator retries (they may pass) and which end the attempt or the
run at once (asking again cannot help)."""

from __future__ import annotations

import pytest
from urllib3.exceptions import MaxRetryError, ProtocolError

from kascade.operator.kube import KubeError, passing


@pytest.mark.parametrize(
    ("status", "permanent"),
    [
        (400, True),  # the body does not parse
        (403, True),  # forbidden: RBAC, a quota, a terminating namespace
        (404, True),
        (413, True),  # too large
        (422, True),  # invalid: a label value Kubernetes refuses
        (408, False),  # request timeout
        (409, False),  # conflict
        (429, False),  # throttled
        (500, False),
        (503, False),
        (0, False),  # no HTTP answer at all
    ],
)
def test_a_refusal_is_permanent_unless_asking_again_may_help(status: int, permanent: bool):
    err = KubeError(status, "answer")
    assert err.permanent is permanent
    assert passing(err) is not permanent


def test_connection_trouble_passes_and_mistakes_do_not():
    assert passing(ConnectionRefusedError())
    assert passing(TimeoutError())
    assert passing(MaxRetryError(None, "/", ProtocolError("reset")))  # type: ignore[arg-type]
    assert not passing(TypeError("Object of type set is not JSON serializable"))
    assert not passing(ValueError("bad"))
