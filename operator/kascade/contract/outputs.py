"""Task outputs on the wire: a JSON object of at most 4096 bytes (compact), the
Kubernetes termination-message limit. The runtime encodes them; hosts decode what a task
published (a termination message, or the file standing in for it locally)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kascade.contract import ContractError

# The Kubernetes termination-message limit. (The API's description of Task outputs says
# the same; a unit test keeps them equal. This module stays light to import: every task
# process loads it.)
OUTPUTS_MAX_BYTES = 4096

__all__ = ["OUTPUTS_MAX_BYTES", "OutputsError", "decode_outputs", "encode_outputs"]


class OutputsError(ContractError):
    """Outputs that are not a JSON object or are too large."""


def encode_outputs(outputs: Any) -> str:
    """Compact JSON of an outputs object; OutputsError when it breaks the rules."""
    if not isinstance(outputs, dict):
        raise OutputsError(f"outputs must be a JSON object, got {type(outputs).__name__}")
    try:
        text = json.dumps(outputs, separators=(",", ":"), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise OutputsError(f"outputs must be plain JSON: {err}") from err
    size = len(text.encode("utf-8"))
    if size > OUTPUTS_MAX_BYTES:
        raise OutputsError(f"outputs are {size} bytes; the limit is {OUTPUTS_MAX_BYTES} bytes")
    return text


def decode_outputs(text: str | None) -> dict[str, Any]:
    """The outputs a task published ({} when there are none or they are not an object)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def read_published(path: Path) -> dict[str, Any]:
    """Outputs a local task published in its stand-in termination file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    return decode_outputs(text)
