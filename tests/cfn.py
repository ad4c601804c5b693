"""template.yaml as data, and a small evaluator of the intrinsic functions it uses.

``load_template()`` keeps CloudFormation's short tags as their long forms (``!Ref x`` ->
``{"Ref": "x"}``, ``!GetAtt A.B`` -> ``{"Fn::GetAtt": ["A", "B"]}``). ``evaluate`` resolves
``Ref`` (parameters and pseudo parameters), ``Fn::If``/``Equals``/``Not``/``And``/``Or``,
``Fn::Join``,
``Select``, ``Split``, ``Sub`` and the rule function ``EachMemberEquals`` for given parameter
values - enough to ask "what does this stack look like with AuthMode=JWT". References to
resources resolve to the values in ``resources`` (``"Name"`` for a Ref, ``"Name.Attribute"``
for a GetAtt: what ``aws_deploy`` made on moto), else stay as ``<Name>`` / ``<Name.Attribute>``
text. ``create_table_arguments`` turns the template's table into ``CreateTable`` arguments.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

__all__ = ["NO_VALUE", "PSEUDO", "TEMPLATE", "Stack", "create_table_arguments", "load_template"]

TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"
NO_VALUE = object()  # what {"Ref": "AWS::NoValue"} evaluates to
PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": "eu-west-1",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "imgpipe-test",
    "AWS::StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/imgpipe-test/"
    "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
}


class _CfnLoader(yaml.SafeLoader):
    """A safe loader that also accepts CloudFormation's short intrinsic tags."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise yaml.constructor.ConstructorError(None, None, f"unexpected node {node.tag}")
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    template: dict[str, Any] = yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)
    return template  # (a SafeLoader: no object construction)


class Stack:
    """The template with parameter values: defaults, overridden by ``parameters``."""

    def __init__(
        self,
        template: dict[str, Any],
        resources: dict[str, str] | None = None,
        pseudo: dict[str, str] | None = None,
        **parameters: str,
    ) -> None:
        self.template = template
        self.resources = dict(resources or {})
        self.pseudo = {**PSEUDO, **(pseudo or {})}
        self.parameters = {name: str(spec.get("Default", ""))
                           for name, spec in template.get("Parameters", {}).items()}  # fmt: skip
        self.parameters.update(parameters)

    def condition(self, name: str) -> bool:
        return bool(self.evaluate(self.template["Conditions"][name]))

    def exists(self, resource: str) -> bool:
        condition = self.template["Resources"][resource].get("Condition")
        return condition is None or self.condition(condition)

    def evaluate(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.evaluate(n) for n in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) != 1 or not next(iter(node)).startswith(("Ref", "Fn::", "Condition")):
            return {k: v for k, v in ((k, self.evaluate(v)) for k, v in node.items())
                    if v is not NO_VALUE}  # fmt: skip
        ((name, arg),) = node.items()
        if name == "Ref":
            if arg == "AWS::NoValue":
                return NO_VALUE
            if arg in self.pseudo:
                return self.pseudo[arg]
            if arg in self.parameters:
                return self.parameters[arg]
            return self.resources.get(arg, f"<{arg}>")
        if name in ("Condition", "Fn::Condition"):  # the short tag !Condition loads as the latter
            return self.condition(arg)
        if name == "Fn::GetAtt":
            return self.resources.get(".".join(arg), f"<{'.'.join(arg)}>")
        if name == "Fn::EachMemberEquals":
            members = self.evaluate(arg[0])
            members = members.split(",") if isinstance(members, str) else members
            return all(m == self.evaluate(arg[1]) for m in members)
        if name == "Fn::If":
            return self.evaluate(arg[1] if self.condition(arg[0]) else arg[2])
        if name == "Fn::Equals":
            return self.evaluate(arg[0]) == self.evaluate(arg[1])
        if name == "Fn::Not":
            return not self.evaluate(arg[0])
        if name == "Fn::And":
            return all(self.evaluate(a) for a in arg)
        if name == "Fn::Or":
            return any(self.evaluate(a) for a in arg)
        if name == "Fn::Join":
            return str(arg[0]).join(str(v) for v in self.evaluate(arg[1]))
        if name == "Fn::Select":
            items = self.evaluate(arg[1])
            index = int(arg[0])
            # A part of an unresolved value (e.g. the host of "<HttpApi.ApiEndpoint>").
            return items[index] if index < len(items) else f"<part {index} of {items[0]}>"
        if name == "Fn::Split":
            return str(self.evaluate(arg[1])).split(arg[0])
        if name == "Fn::Sub":
            text, names = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
            return re.sub(r"\$\{([^}]+)\}",
                          lambda m: str(self.evaluate(names.get(m.group(1))
                                                      or _sub_ref(m.group(1)))), text)  # fmt: skip
        raise NotImplementedError(name)


def _sub_ref(name: str) -> dict[str, Any]:
    """``${X}`` in Fn::Sub: a Ref, or a GetAtt when it has a dot."""
    if "." in name and not name.startswith("AWS::"):
        return {"Fn::GetAtt": name.split(".", 1)}
    return {"Ref": name}


def create_table_arguments(stack: Stack, logical_id: str, name: str) -> dict[str, Any]:
    """``CreateTable`` arguments for the template's table ``logical_id``, named ``name``: keys,
    attributes, indexes and billing mode exactly as the template has them."""
    props = stack.evaluate(stack.template["Resources"][logical_id]["Properties"])
    arguments = {"TableName": name, "BillingMode": props["BillingMode"],
                 "AttributeDefinitions": props["AttributeDefinitions"],
                 "KeySchema": props["KeySchema"]}  # fmt: skip
    if "GlobalSecondaryIndexes" in props:
        arguments["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    return arguments
