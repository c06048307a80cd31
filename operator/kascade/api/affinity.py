"""core/v1 Affinity for task pods: node affinity, pod affinity and anti-affinity, with the
shapes and checks the API server applies when it creates the Job (see core.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from kascade.api.core import LABEL_KEY, LABEL_KEY_MAX, LABEL_VALUE_MAX, CoreModel
from kascade.api.markers import cel
from kascade.api.meta import DNS_LABEL

MAX_TERMS = 20
MAX_EXPRESSIONS = 20
MAX_VALUES = 100
MAX_NAMESPACES = 50
NamespaceName = Annotated[str, Field(max_length=63, pattern=DNS_LABEL)]

_VALUES_RULE = (
    "self.operator in ['Exists', 'DoesNotExist'] ? (!has(self.values) || size(self.values) == 0)"
    " : (self.operator in ['Gt', 'Lt'] ? (has(self.values) && size(self.values) == 1)"
    " : (has(self.values) && size(self.values) > 0))",
    "values must be empty for Exists and DoesNotExist, hold one integer for Gt and Lt, and "
    "at least one value for In and NotIn",
)


def _check_values(operator: str, values: list[str] | None) -> None:
    count = len(values or [])
    if operator in ("Exists", "DoesNotExist") and count:
        raise ValueError(f"values must be empty when operator is {operator}")
    integer = count == 1 and (values or [""])[0].lstrip("-").isdigit()
    if operator in ("Gt", "Lt") and not integer:
        raise ValueError(f"operator {operator} takes exactly one integer value")
    if operator in ("In", "NotIn") and not count:
        raise ValueError(f"operator {operator} needs at least one value")


class NodeSelectorRequirement(CoreModel):
    """A node label (or field) and the values it must (not) have."""

    model_config = ConfigDict(json_schema_extra=cel(_VALUES_RULE))

    key: str = Field(max_length=LABEL_KEY_MAX, pattern=LABEL_KEY, description="Label key.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"] = Field(
        description="How the node's value is compared with values."
    )
    values: list[str] | None = Field(
        default=None,
        max_length=MAX_VALUES,
        description="Values compared with; one integer for Gt and Lt, none for Exists.",
    )

    @model_validator(mode="after")
    def _values_fit_operator(self) -> NodeSelectorRequirement:
        _check_values(self.operator, self.values)
        return self


class NodeSelectorTerm(CoreModel):
    """Requirements a node must all meet."""

    match_expressions: list[NodeSelectorRequirement] | None = Field(
        default=None, max_length=MAX_EXPRESSIONS, description="Requirements on node labels."
    )
    match_fields: list[NodeSelectorRequirement] | None = Field(
        default=None, max_length=MAX_EXPRESSIONS, description="Requirements on node fields."
    )


class NodeSelector(CoreModel):
    """Terms of which a node must meet at least one."""

    node_selector_terms: list[NodeSelectorTerm] = Field(
        min_length=1, max_length=MAX_TERMS, description="The terms (ORed)."
    )


class PreferredSchedulingTerm(CoreModel):
    """A term the scheduler prefers a node to meet, with its weight."""

    weight: int = Field(ge=1, le=100, description="Weight, 1-100.")
    preference: NodeSelectorTerm = Field(description="The preferred term.")


class NodeAffinity(CoreModel):
    """Which nodes the task pods may or should run on."""

    required_during_scheduling_ignored_during_execution: NodeSelector | None = Field(
        default=None, description="Nodes the pods must run on."
    )
    preferred_during_scheduling_ignored_during_execution: list[PreferredSchedulingTerm] | None = (
        Field(default=None, max_length=MAX_TERMS, description="Nodes the pods should run on.")
    )


class LabelSelectorRequirement(CoreModel):
    """A label and the values it must (not) have."""

    model_config = ConfigDict(json_schema_extra=cel(_VALUES_RULE))

    key: str = Field(max_length=LABEL_KEY_MAX, pattern=LABEL_KEY, description="Label key.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="How the label's value is compared with values."
    )
    values: list[str] | None = Field(
        default=None, max_length=MAX_VALUES, description="Values compared with."
    )

    @model_validator(mode="after")
    def _values_fit_operator(self) -> LabelSelectorRequirement:
        _check_values(self.operator, self.values)
        return self


class LabelSelector(CoreModel):
    """A metav1 LabelSelector."""

    match_labels: dict[str, str] | None = Field(
        default=None, max_length=MAX_EXPRESSIONS, description="Labels that must be equal."
    )
    match_expressions: list[LabelSelectorRequirement] | None = Field(
        default=None, max_length=MAX_EXPRESSIONS, description="Label requirements."
    )

    @model_validator(mode="after")
    def _label_values(self) -> LabelSelector:
        for key, value in (self.match_labels or {}).items():
            if len(value) > LABEL_VALUE_MAX:
                raise ValueError(f"matchLabels[{key}] is longer than {LABEL_VALUE_MAX}")
        return self


class PodAffinityTerm(CoreModel):
    """Pods (by labels, in namespaces) whose topology domain the task pod joins or avoids."""

    label_selector: LabelSelector | None = Field(default=None, description="The pods.")
    namespace_selector: LabelSelector | None = Field(
        default=None, description="Namespaces of the pods, by label."
    )
    namespaces: list[NamespaceName] | None = Field(
        default=None, max_length=MAX_NAMESPACES, description="Namespaces of the pods, by name."
    )
    topology_key: str = Field(
        max_length=LABEL_KEY_MAX,
        pattern=LABEL_KEY,
        description="Node label whose value is the domain, e.g. kubernetes.io/hostname.",
    )
    match_label_keys: list[str] | None = Field(
        default=None, max_length=MAX_EXPRESSIONS, description="Pod label keys matched with In."
    )
    mismatch_label_keys: list[str] | None = Field(
        default=None, max_length=MAX_EXPRESSIONS, description="Pod label keys matched with NotIn."
    )


class WeightedPodAffinityTerm(CoreModel):
    """A pod affinity term the scheduler prefers, with its weight."""

    weight: int = Field(ge=1, le=100, description="Weight, 1-100.")
    pod_affinity_term: PodAffinityTerm = Field(description="The preferred term.")


class PodAffinity(CoreModel):
    """Pods the task pods should run near (affinity) or away from (anti-affinity)."""

    required_during_scheduling_ignored_during_execution: list[PodAffinityTerm] | None = Field(
        default=None, max_length=MAX_TERMS, description="Terms the pods must meet."
    )
    preferred_during_scheduling_ignored_during_execution: list[WeightedPodAffinityTerm] | None = (
        Field(default=None, max_length=MAX_TERMS, description="Terms the pods should meet.")
    )


class Affinity(CoreModel):
    """A core/v1 Affinity for the task pods."""

    node_affinity: NodeAffinity | None = Field(default=None, description="Node affinity.")
    pod_affinity: PodAffinity | None = Field(default=None, description="Pod affinity.")
    pod_anti_affinity: PodAffinity | None = Field(default=None, description="Pod anti-affinity.")
