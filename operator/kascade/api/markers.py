"""Kubernetes schema markers (CEL rules, list types, pass-through) attached to model fields."""

from __future__ import annotations

from pydantic.config import JsonDict, JsonValue


def preserve_unknown_fields() -> JsonDict:
    """Let the API server keep any content (used for pass-through core/v1 objects)."""
    return {"x-kubernetes-preserve-unknown-fields": True}


def cel(*rules: tuple[str, str]) -> JsonDict:
    """CEL validation rules: (rule, message) pairs; a message starting with "=" is an expression."""
    entries: list[JsonValue] = []
    for rule, message in rules:
        if message.startswith("="):
            entries.append({"rule": rule, "messageExpression": message[1:]})
        else:
            entries.append({"rule": rule, "message": message})
    return {"x-kubernetes-validations": entries}


def immutable_fields(fields: list[str], changeable: str) -> list[tuple[str, str]]:
    """Transition rules of an object whose `fields` never change after creation: neither
    set, removed nor altered (a rule on the field itself would only guard a field that
    existed before). `changeable` names what may change, for the message."""
    return [
        (
            f"has(self.{name}) == has(oldSelf.{name}) && "
            f"(!has(self.{name}) || self.{name} == oldSelf.{name})",
            f"spec.{name} is immutable: only {changeable} may change after creation",
        )
        for name in fields
    ]


def unique_by_name() -> JsonDict:
    """A list whose items are keyed (and so kept unique) by their name."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}
