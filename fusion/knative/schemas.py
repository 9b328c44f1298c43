"""Offline validation of the manifests against real schemas (needs `jsonschema`, a dev dependency).

Knative kinds are validated against the CRDs' openAPIV3Schema of the version they use (the
upstream files in `<repo>/../shared/schemas/knative/`), plus the API server's pruning rule that a
JSON Schema alone does not express: a field the structural schema does not declare is unknown
(kubectl's strict field validation refuses it). Core kinds (Deployment, Service, Job, Secret,
ConfigMap, Namespace) are checked against the essential structure written out below.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft7Validator

from fusion.knative.environments import PROJECT_ROOT
from fusion.knative.resources import Manifest

SchemaKey = tuple[str, str]  # (apiVersion, kind)
PRESERVE = "x-kubernetes-preserve-unknown-fields"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
QUALIFIED_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


def shared_schemas_dir() -> Path:
    """Where the upstream schemas live: `<repo>/../shared/schemas`."""
    return PROJECT_ROOT.parent / "shared" / "schemas"


def load_crd_schemas(knative_dir: Path) -> dict[SchemaKey, dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema, for every served version of every CRD file."""
    schemas: dict[SchemaKey, dict[str, Any]] = {}
    for path in sorted(knative_dir.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text(encoding="utf-8"))
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served", True):
                schemas[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return schemas


def unknown_fields(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    """Fields a structural schema does not declare (the API server would prune or refuse them)."""
    if schema.get(PRESERVE):
        return []
    if isinstance(value, dict):
        properties = schema.get("properties")
        additional = schema.get("additionalProperties")
        found = []
        for key, item in value.items():
            if properties is not None and key in properties:
                found += unknown_fields(item, properties[key], f"{path}.{key}")
            elif isinstance(additional, dict):
                found += unknown_fields(item, additional, f"{path}.{key}")
            elif additional is not True:
                found.append(f"{path}.{key}: unknown field")
        return found
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [problem for i, item in enumerate(value) for problem in unknown_fields(item, schema["items"],
                                                                                          f"{path}[{i}]")]
    return []


def _schema_errors(document: Any, schema: dict[str, Any], name: str) -> list[str]:
    validator = Draft7Validator(schema)
    return [
        f"{name}: {'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    ]


def metadata_problems(doc: Manifest) -> list[str]:
    """Root metadata, which no CRD schema validates: names, label and annotation syntax."""
    meta = doc.get("metadata", {})
    name = f"{doc.get('kind')}/{meta.get('name')}"
    problems = []
    if not DNS_LABEL.match(str(meta.get("name", ""))):
        problems.append(f"{name}: name is not a DNS-1123 label")
    for template in (meta, doc.get("spec", {}).get("template", {}).get("metadata", {})
                     if isinstance(doc.get("spec"), dict) else {}):
        for key, value in template.get("labels", {}).items():
            if not QUALIFIED_KEY.match(key) or not LABEL_VALUE.match(str(value)):
                problems.append(f"{name}: label {key}={value!r} is not valid")
        problems += [f"{name}: annotation key {key!r} is not valid"
                     for key in template.get("annotations", {}) if not QUALIFIED_KEY.match(key)]
    return problems


# The essential structure of the core kinds this platform renders (closed: an unexpected field fails).
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_KEY_REF = {"type": "object", "required": ["name", "key"], "additionalProperties": False,
            "properties": {"name": {"type": "string"}, "key": {"type": "string"}}}
_ENV_VAR = {
    "type": "object", "required": ["name"], "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
        "value": {"type": "string"},
        "valueFrom": {"type": "object", "additionalProperties": False, "minProperties": 1, "maxProperties": 1,
                      "properties": {"secretKeyRef": _KEY_REF, "configMapKeyRef": _KEY_REF}},
    },
    "oneOf": [{"required": ["value"]}, {"required": ["valueFrom"]}],
}
_PROBE = {
    "type": "object", "additionalProperties": False, "required": ["httpGet"],
    "properties": {
        "httpGet": {"type": "object", "required": ["path", "port"], "additionalProperties": False,
                    "properties": {"path": {"type": "string"}, "port": {"type": ["integer", "string"]}}},
        **{field: {"type": "integer", "minimum": 0} for field in
           ("initialDelaySeconds", "periodSeconds", "timeoutSeconds", "failureThreshold")},
    },
}
_QUANTITIES = {"type": "object", "additionalProperties": False,
               "properties": {"cpu": {"type": "string"}, "memory": {"type": "string"}}}
_CONTAINER = {
    "type": "object", "required": ["name", "image"], "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": DNS_LABEL.pattern},
        "image": {"type": "string", "minLength": 1},
        "command": {"type": "array", "items": {"type": "string"}},
        "args": {"type": "array", "items": {"type": "string"}},
        "env": {"type": "array", "items": _ENV_VAR},
        "ports": {"type": "array", "items": {
            "type": "object", "required": ["containerPort"], "additionalProperties": False,
            "properties": {"name": {"type": "string"}, "containerPort": {"type": "integer", "minimum": 1,
                                                                           "maximum": 65535},
                           "protocol": {"enum": ["TCP", "UDP", "SCTP"]}}}},
        "resources": {"type": "object", "additionalProperties": False,
                      "properties": {"requests": _QUANTITIES, "limits": _QUANTITIES}},
        "readinessProbe": _PROBE, "livenessProbe": _PROBE, "startupProbe": _PROBE,
        "volumeMounts": {"type": "array", "items": {
            "type": "object", "required": ["name", "mountPath"], "additionalProperties": False,
            "properties": {"name": {"type": "string"}, "mountPath": {"type": "string"},
                           "readOnly": {"type": "boolean"}}}},
        "securityContext": {"type": "object", "additionalProperties": False, "properties": {
            "runAsNonRoot": {"type": "boolean"}, "runAsUser": {"type": "integer"},
            "allowPrivilegeEscalation": {"type": "boolean"}, "readOnlyRootFilesystem": {"type": "boolean"},
            "capabilities": {"type": "object", "additionalProperties": False,
                             "properties": {"drop": {"type": "array", "items": {"type": "string"}}}},
            "seccompProfile": {"type": "object", "required": ["type"], "additionalProperties": False,
                               "properties": {"type": {"enum": ["RuntimeDefault", "Localhost", "Unconfined"]}}},
        }},
    },
}


def _pod_template(restart_policies: list[str], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object", "required": ["metadata", "spec"], "additionalProperties": False,
        "properties": {
            "metadata": {"type": "object", "additionalProperties": False,
                         "properties": {"labels": _STRING_MAP, "annotations": _STRING_MAP}},
            "spec": {
                "type": "object", "required": ["containers", *required], "additionalProperties": False,
                "properties": {
                    "containers": {"type": "array", "minItems": 1, "items": _CONTAINER},
                    "restartPolicy": {"enum": restart_policies},
                    "enableServiceLinks": {"type": "boolean"},
                    "terminationGracePeriodSeconds": {"type": "integer", "minimum": 0},
                    "serviceAccountName": {"type": "string"},
                    "volumes": {"type": "array", "items": {
                        "type": "object", "required": ["name"], "additionalProperties": False,
                        "minProperties": 2, "maxProperties": 2,
                        "properties": {"name": {"type": "string"}, "emptyDir": {"type": "object"},
                                       "configMap": {"type": "object", "required": ["name"],
                                                     "properties": {"name": {"type": "string"}}},
                                       "secret": {"type": "object", "required": ["secretName"],
                                                  "properties": {"secretName": {"type": "string"},
                                                                 "items": {"type": "array"}}}}}},
                },
            },
        },
    }


def _kind(api_version: str, kind: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object", "additionalProperties": False, "required": ["apiVersion", "kind", "metadata", *required],
        "properties": {
            "apiVersion": {"const": api_version}, "kind": {"const": kind},
            "metadata": {"type": "object", "required": ["name"], "additionalProperties": False,
                         "properties": {"name": {"type": "string"}, "namespace": {"type": "string"},
                                        "labels": _STRING_MAP, "annotations": _STRING_MAP}},
            **properties,
        },
    }


_INT = {"type": "integer", "minimum": 0}
_SELECTOR = {"type": "object", "additionalProperties": False, "properties": {
    "matchLabels": _STRING_MAP,
    "matchExpressions": {"type": "array", "items": {
        "type": "object", "required": ["key", "operator"], "additionalProperties": False,
        "properties": {"key": {"type": "string"}, "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                       "values": {"type": "array", "items": {"type": "string"}}}}}}}
_GROUP = {"type": "string", "maxLength": 253,
          "pattern": r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"}
_GATEWAY_KIND = {"type": "string", "minLength": 1, "maxLength": 63, "pattern": r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$"}
_DNS_LABEL = {"type": "string", "minLength": 1, "maxLength": 63, "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"}
CORE_SCHEMAS: dict[SchemaKey, dict[str, Any]] = {
    ("v1", "Namespace"): _kind("v1", "Namespace", {}, []),
    ("networking.k8s.io/v1", "NetworkPolicy"): _kind("networking.k8s.io/v1", "NetworkPolicy", {"spec": {
        "type": "object", "required": ["podSelector"], "additionalProperties": False,
        "properties": {
            "podSelector": _SELECTOR,
            "policyTypes": {"type": "array", "items": {"enum": ["Ingress", "Egress"]}},
            "ingress": {"type": "array", "items": {"type": "object", "additionalProperties": False, "properties": {
                "from": {"type": "array", "items": {"type": "object", "additionalProperties": False, "properties": {
                    "namespaceSelector": _SELECTOR, "podSelector": _SELECTOR}}},
                "ports": {"type": "array"}}}},
        }}}, ["spec"]),
    # Gateway API's ReferenceGrant: its CRD is not among the shared schemas; its spec is this small, as
    # the Gateway API reference (v1beta1) states it.
    ("gateway.networking.k8s.io/v1beta1", "ReferenceGrant"): _kind("gateway.networking.k8s.io/v1beta1",
                                                                    "ReferenceGrant", {"spec": {
        "type": "object", "required": ["from", "to"], "additionalProperties": False,
        "properties": {
            "from": {"type": "array", "minItems": 1, "maxItems": 16, "items": {
                "type": "object", "required": ["group", "kind", "namespace"], "additionalProperties": False,
                "properties": {"group": _GROUP, "kind": _GATEWAY_KIND, "namespace": _DNS_LABEL}}},
            "to": {"type": "array", "minItems": 1, "maxItems": 16, "items": {
                "type": "object", "required": ["group", "kind"], "additionalProperties": False,
                "properties": {"group": _GROUP, "kind": _GATEWAY_KIND, "name": {
                    "type": "string", "minLength": 1, "maxLength": 253}}}},
        }}}, ["spec"]),
    ("v1", "ConfigMap"): _kind("v1", "ConfigMap", {"data": _STRING_MAP}, ["data"]),
    ("v1", "Secret"): _kind("v1", "Secret", {"type": {"type": "string"}, "stringData": _STRING_MAP,
                                             "data": _STRING_MAP}, ["type"]),
    ("v1", "Service"): _kind("v1", "Service", {"spec": {
        "type": "object", "required": ["selector", "ports"], "additionalProperties": False,
        "properties": {
            "type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
            "selector": _STRING_MAP,
            "ports": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["port"], "additionalProperties": False,
                "properties": {"name": {"type": "string"}, "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                               "targetPort": {"type": ["integer", "string"]},
                               "protocol": {"enum": ["TCP", "UDP", "SCTP"]}}}},
        }}}, ["spec"]),
    ("apps/v1", "Deployment"): _kind("apps/v1", "Deployment", {"spec": {
        "type": "object", "required": ["selector", "template"], "additionalProperties": False,
        "properties": {
            "replicas": _INT,
            "strategy": {"type": "object", "additionalProperties": False,
                         "properties": {"type": {"enum": ["Recreate", "RollingUpdate"]}}},
            "selector": {"type": "object", "required": ["matchLabels"], "additionalProperties": False,
                         "properties": {"matchLabels": _STRING_MAP}},
            "template": _pod_template(["Always"]),
        }}}, ["spec"]),
    ("batch/v1", "Job"): _kind("batch/v1", "Job", {"spec": {
        "type": "object", "required": ["template"], "additionalProperties": False,
        "properties": {
            "backoffLimit": _INT, "activeDeadlineSeconds": _INT, "ttlSecondsAfterFinished": _INT,
            "template": _pod_template(["Never", "OnFailure"], required=("restartPolicy",)),
        }}}, ["spec"]),
}


def _core_semantics(doc: Manifest, documents: list[Manifest]) -> list[str]:
    """Cross-field rules of core kinds: selectors select the pod template, probe ports exist."""
    name = f"{doc['kind']}/{doc['metadata']['name']}"
    problems = []
    if doc["kind"] == "Deployment":
        selector = doc["spec"]["selector"]["matchLabels"]
        template_labels = doc["spec"]["template"]["metadata"].get("labels", {})
        if not selector or any(template_labels.get(k) != v for k, v in selector.items()):
            problems.append(f"{name}: selector does not match the pod template's labels")
    if doc["kind"] == "Service" and doc["apiVersion"] == "v1":
        selector = doc["spec"]["selector"]
        pods = [d["spec"]["template"]["metadata"].get("labels", {}) for d in documents if d.get("kind") == "Deployment"]
        if not any(all(labels.get(k) == v for k, v in selector.items()) for labels in pods):
            problems.append(f"{name}: selector matches no Deployment")
    return problems


def validate(documents: Iterable[Manifest], crd_schemas: dict[SchemaKey, dict[str, Any]]) -> list[str]:
    """Every problem found in the documents; a kind with no schema at all is a problem too."""
    docs = list(documents)
    problems: list[str] = []
    for doc in docs:
        key = (str(doc.get("apiVersion")), str(doc.get("kind")))
        name = f"{key[1]}/{doc.get('metadata', {}).get('name')} ({key[0]})"
        problems += metadata_problems(doc)
        if key in crd_schemas:
            schema = crd_schemas[key]
            problems += _schema_errors(doc, schema, name)
            body = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind", "metadata")}
            problems += [f"{name}: {p}" for p in unknown_fields(body, schema, "")]
        elif key in CORE_SCHEMAS:
            errors = _schema_errors(doc, CORE_SCHEMAS[key], name)
            problems += errors or _core_semantics(doc, docs)
        else:
            problems.append(f"{name}: no schema to validate it against")
    return problems
