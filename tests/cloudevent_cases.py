"""The CloudEvents HTTP-binding conformance cases (tests/data/cloudevents), as HTTP requests."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

DATA = Path(__file__).parent / "data" / "cloudevents"


@dataclass(frozen=True)
class Case:
    name: str
    headers: dict[str, str]
    body: bytes
    attributes: dict[str, str]
    data: bytes


def _from_yaml(name: str, doc: dict[str, object]) -> Case:
    attrs = {k: str(v) for k, v in dict(doc["ContextAttributes"]).items() if k != "Extensions"}  # type: ignore[call-overload]
    extensions = dict(doc["ContextAttributes"].get("Extensions") or {})  # type: ignore[attr-defined]
    attrs.update({k: str(v).strip() for k, v in extensions.items()})
    data = str(doc.get("Data", "")).encode()
    transport = {k: str(v) for k, v in dict(doc.get("TransportExtensions") or {}).items()}  # type: ignore[call-overload]
    if doc.get("Mode") == "structured":
        envelope: dict[str, object] = dict(attrs)
        envelope["data"] = json.loads(data)
        headers = {"Content-Type": "application/cloudevents+json; charset=UTF-8", **transport}
        return Case(name, headers, json.dumps(envelope).encode(), attrs, data)
    headers = {("Content-Type" if k == "datacontenttype" else f"ce-{k}"): v for k, v in attrs.items()}
    return Case(name, {**headers, **transport}, data, attrs, data)


def yaml_cases() -> list[Case]:
    cases = []
    for path in sorted(DATA.glob("yaml/**/*.yaml")):
        for n, doc in enumerate(yaml.load_all(path.read_text(), Loader=yaml.BaseLoader)):
            if doc:
                cases.append(_from_yaml(f"{path.stem}-{n}", doc))
    return cases


def feature_cases() -> list[Case]:
    text = (DATA / "features" / "http-protocol-binding.feature").read_text()
    cases = []
    for block in re.findall(r"Scenario Outline:.*?(?=Scenario Outline:|\Z)", text, re.S):
        request = re.search(r'"""\n(.*?)\n\s*"""', block, re.S).group(1)  # type: ignore[union-attr]
        content_types = re.findall(r"^\s*\|\s*(application/[^|]+?)\s*\|\s*$", block.split("Examples:")[1], re.M)
        head, _, body = request.partition("\n\n")
        for content_type in content_types:
            headers = {}
            for line in head.splitlines()[1:]:
                name, _, value = line.strip().partition(":")
                if name.lower() not in ("host", "content-length"):
                    headers[name] = value.strip().replace("<contentType>", content_type)
            payload = "\n".join(line.strip() for line in body.splitlines()).encode()
            if content_type.startswith("application/cloudevents"):
                envelope = json.loads(payload)
                data = json.dumps(envelope.pop("data")).encode()
                cases.append(Case(f"feature-{content_type}", headers, payload, envelope, data))
            else:
                attrs = {k[3:]: v for k, v in headers.items() if k.startswith("ce-")}
                cases.append(Case(f"feature-{content_type}", headers, payload, attrs, payload))
    return cases


def all_cases() -> list[Case]:
    return yaml_cases() + feature_cases()
