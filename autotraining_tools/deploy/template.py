"""The CloudFormation template as data: loading it, the emulator's cut of it, Settings from outputs.

``deploy/cloudformation/template.yaml`` is the one definition of the stack's resources. AWS gets
it as written. moto gets ``for_emulator(template)``: the same template minus the resource types
moto cannot run or must not run (see shared NOTES.md) and everything that refers to them.
``settings_from_outputs`` turns the stack's outputs into the ``Settings`` every side uses.
"""
from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from autotraining.settings import Settings

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "deploy" / "cloudformation" / "template.yaml"

# Resource types the embedded run drops, and why: moto delivers nothing through event source
# mappings and a stream mapping makes the stream's records vanish (the embedded poller stands in);
# alarms are stored, never evaluated; API Gateway v2 is not supported by moto's CloudFormation
# (the embedded gateway stands in); an Output with GetAtt on it even fails create_stack.
EMULATOR_DROPPED_TYPES = (
    "AWS::Lambda::EventSourceMapping",
    "AWS::CloudWatch::Alarm",
    "AWS::ApiGatewayV2::",
)

# Stack output -> Settings field.
OUTPUT_SETTINGS = {
    "RecordsTable": "records_table",
    "ModelsTable": "models_table",
    "ConsumedTable": "consumed_table",
    "Bucket": "bucket",
    "QueueUrl": "queue_url",
    "DlqUrl": "dlq_url",
    "InstanceId": "instance_id",
    "StarterFunction": "starter_function",
    "WorkerArtifact": "worker_artifact",
}


class TemplateError(ValueError):
    """The template cannot be read or is not a CloudFormation template."""


class _Loader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags (!Ref, !Sub, !GetAtt, ...) in their long form."""


def _construct(tag: str):  # type: ignore[no-untyped-def]
    name = "Ref" if tag == "Ref" else f"Fn::{tag}"

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    return construct


for _tag in ("Ref", "Sub", "GetAtt", "If", "Not", "Equals", "And", "Or", "Join", "Select", "Split",
             "Base64", "FindInMap", "ImportValue", "GetAZs", "Condition", "Cidr"):
    _Loader.add_constructor(f"!{_tag}", _construct(_tag))


def load_template(path: Path | str = TEMPLATE_PATH) -> dict[str, Any]:
    """The template as a dict with intrinsic functions in long form (``{"Ref": ...}``)."""
    try:
        # _Loader is a SafeLoader subclass (CloudFormation's short tags only)
        data = yaml.load(Path(path).read_text(), Loader=_Loader)  # noqa: S506  # nosec
    except (OSError, yaml.YAMLError) as exc:
        raise TemplateError(f"cannot read template {path}: {exc}") from None
    if not isinstance(data, dict) or "Resources" not in data:
        raise TemplateError(f"{path} is not a CloudFormation template (no Resources)")
    return data


_SUB_REF = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?\}")


def references(node: Any) -> set[str]:
    """Logical ids a template fragment refers to (Ref, GetAtt, ${...} in Sub, DependsOn)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else str(value).split(".")[0])
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                found.update(_SUB_REF.findall(text))
                if isinstance(value, list):
                    found.update(references(value[1]))
            elif key == "DependsOn":
                found.update([value] if isinstance(value, str) else value)
            else:
                found.update(references(value))
    elif isinstance(node, list):
        for item in node:
            found.update(references(item))
    return found


def for_emulator(template: Mapping[str, Any]) -> dict[str, Any]:
    """The template minus what moto cannot run, and (transitively) whatever refers to it."""
    out = copy.deepcopy(dict(template))
    resources: dict[str, Any] = out["Resources"]
    dropped = {name for name, res in resources.items()
               if str(res.get("Type", "")).startswith(EMULATOR_DROPPED_TYPES)}
    while True:
        more = {name for name, res in resources.items()
                if name not in dropped and references(res) & dropped}
        if not more:
            break
        dropped |= more
    for name in dropped:
        del resources[name]
    out["Outputs"] = {name: o for name, o in out.get("Outputs", {}).items() if not references(o) & dropped}
    return out


def dropped_for_emulator(template: Mapping[str, Any]) -> list[str]:
    """Logical ids ``for_emulator`` leaves out (for logs and tests)."""
    kept = for_emulator(template)["Resources"]
    return sorted(set(template["Resources"]) - set(kept))


def to_json(template: Mapping[str, Any]) -> str:
    return json.dumps(template, separators=(",", ":"))


def settings_from_outputs(outputs: Mapping[str, str], base: Settings) -> Settings:
    """``base`` with every resource name the stack's outputs give."""
    missing = [key for key in OUTPUT_SETTINGS if key not in outputs]
    if missing:
        raise TemplateError(f"stack outputs lack {', '.join(missing)}")
    return base.replace(**{field: outputs[key] for key, field in OUTPUT_SETTINGS.items()})
