"""The base model every kascade API object derives from: camelCase on the wire, strict input."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """A spec object: camelCase field names on the wire, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=False,
        validate_default=False,
    )

    def to_wire(self) -> dict[str, Any]:
        """The object as it is written to the API server: camelCase keys, no unset optionals."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class StatusModel(ApiModel):
    """A status object: written by kascade itself, so unknown (newer) fields are ignored."""

    model_config = ConfigDict(extra="ignore")
