"""Task outputs, the task's side: a script writes a JSON object to the file named by
$KASCADE_OUTPUTS. After the task succeeds the runtime checks it (contract.outputs) and
publishes it by writing it to $KASCADE_TERMINATION_LOG (in a pod: /dev/termination-log),
where the local runner or the operator picks it up.
"""

from __future__ import annotations

import json
import os
from typing import Any

from kascade.contract import outputs as contract_outputs
from kascade.contract.env import KUBERNETES_TERMINATION_LOG, OUTPUTS, TERMINATION_LOG
from kascade.runtime.errors import TaskError


class OutputsError(TaskError):
    """Outputs that are not a JSON object or are too large."""


def encode_outputs(outputs: Any) -> str:
    """Compact JSON of an outputs object; OutputsError when it breaks the rules."""
    try:
        return contract_outputs.encode_outputs(outputs)
    except contract_outputs.OutputsError as err:
        raise OutputsError(str(err)) from err


def read_written_outputs() -> dict[str, Any]:
    """What the task wrote to $KASCADE_OUTPUTS ({} when it wrote nothing)."""
    path = os.environ.get(OUTPUTS)
    if not path or not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as err:
        raise OutputsError(f"cannot read outputs file {path}: {err}") from err
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as err:
        raise OutputsError(f"outputs file {path} is not JSON: {err}") from err
    if not isinstance(value, dict):
        raise OutputsError(f"outputs must be a JSON object, got {type(value).__name__}")
    return value


def publish_outputs(outputs: dict[str, Any]) -> None:
    """Write the outputs where the starter of the task reads them."""
    text = encode_outputs(outputs)
    path = os.environ.get(TERMINATION_LOG)
    if path is None:
        if not os.access(KUBERNETES_TERMINATION_LOG, os.W_OK):
            return
        path = KUBERNETES_TERMINATION_LOG
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
