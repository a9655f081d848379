#!/usr/bin/env python3
"""Validates rendered Kubernetes manifests offline, strictly, JobSets included.

    kubectl kustomize deploy/k8s/overlays/jobset > rendered.yaml
    .venv/bin/python deploy/k8s/validate.py rendered.yaml     (or - for stdin)

kubernetes-validate has no schema for a JobSet and passes it with a warning, so JobSets
(jobset.x-k8s.io/v1alpha2) are checked here against the pydantic models of the
kubeflow_trainer_api package (JobsetV1alpha2JobSet and the io_k8s_api_* models of the Job
and Pod templates inside it). Those generated models ignore fields they do not know, so
the document is walked against the models' fields by their JSON names: an unknown field,
a value of the wrong type, a missing required field or a value outside an enum fails,
named by its path (spec.replicatedJobs[2].template.spec.template.spec.containers[0]...).
The names that dependsOn, successPolicy, failurePolicy and coordinator give must be
replicated jobs of the set, as the JobSet webhook requires.

Every other document goes to `kubernetes-validate --strict` (found on PATH, or given with
--kubernetes-validate); a kind it has no schema for fails here instead of warning.

Exit status: 0 valid, 1 invalid (every problem on stderr, one a line), 2 could not run.
Needs PyYAML, pydantic and kubeflow_trainer_api (deploy/python-env.sh puts them in .venv).
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import json
import re
import shutil
import subprocess
import sys
import tempfile
import types
import typing
from datetime import datetime
from functools import lru_cache

try:
    import pydantic
    import yaml
    from kubeflow_trainer_api.models import JobsetV1alpha2JobSet
except ImportError as error:
    print(f"validate.py: {error}; run it with the project's .venv (deploy/python-env.sh)", file=sys.stderr)
    sys.exit(2)

JOBSET_API_VERSION = "jobset.x-k8s.io/v1alpha2"

# Enums the JobSet CRD declares (kubebuilder Enum markers) but the generated models leave
# as plain strings. The Kubernetes models check their own enums with field validators.
JOBSET_ENUMS: dict[tuple[str, str], tuple[str, ...]] = {
    ("JobsetV1alpha2SuccessPolicy", "operator"): ("All", "Any"),
    ("JobsetV1alpha2DependsOn", "status"): ("Ready", "Complete"),
    ("JobsetV1alpha2StartupPolicy", "startupPolicyOrder"): ("AnyOrder", "InOrder"),
    ("JobsetV1alpha2FailurePolicy", "restartStrategy"): ("Recreate", "BlockingRecreate", "InPlaceRestart"),
    ("JobsetV1alpha2FailurePolicyRule", "action"): (
        "FailJobSet",
        "RestartJobSet",
        "RestartJobSetAndIgnoreMaxRestarts",
        "RestartJob",
        "RestartJobAndIgnoreMaxRestarts",
    ),
    ("JobsetV1alpha2VolumeRetentionPolicy", "whenDeleted"): ("Delete", "Retain"),
}

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def child_path(path: str, key: str) -> str:
    """The path of `key` below `path`: a.b for plain names, a["x.io/y"] for the rest."""
    if IDENTIFIER.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


def describe(value: object) -> str:
    """A value's YAML type and a short rendering, for messages."""
    kinds = {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "map"}
    kind = kinds.get(type(value), type(value).__name__)
    text = json.dumps(value, default=str)
    return f"{kind} {text if len(text) <= 40 else text[:37] + '...'}"


@lru_cache(maxsize=None)
def adapter(annotation: object) -> pydantic.TypeAdapter:
    """A cached TypeAdapter for a leaf annotation (StrictStr, StrictInt, datetime, ...)."""
    return pydantic.TypeAdapter(annotation)


def is_model(annotation: object) -> bool:
    return inspect.isclass(annotation) and issubclass(annotation, pydantic.BaseModel)


def is_one_of(model: type[pydantic.BaseModel]) -> bool:
    """The generated wrappers of a oneOf schema (IntOrString, Quantity) hold `actual_instance`."""
    return "actual_instance" in model.model_fields


class Walker:
    """Checks a document against a model tree and collects the problems as 'path: what'."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(f"{path or '(document)'}: {message}")

    def check(self, value: object, annotation: object, path: str) -> None:
        origin = typing.get_origin(annotation)
        if annotation is typing.Any:
            return
        if origin is typing.Union or origin is types.UnionType:
            options = [a for a in typing.get_args(annotation) if a is not type(None)]
            if value is None:
                return  # an Optional field written as null
            if len(options) == 1:
                self.check(value, options[0], path)
            else:
                self.leaf(value, annotation, path)
            return
        if origin is typing.Annotated:
            base = typing.get_args(annotation)[0]
            if is_model(base) or typing.get_origin(base) in (list, dict):
                self.check(value, base, path)
            else:
                self.leaf(value, annotation, path)
            return
        if origin is list:
            if not isinstance(value, list):
                self.fail(path, f"expected a list, got {describe(value)}")
                return
            (item,) = typing.get_args(annotation)
            for index, element in enumerate(value):
                self.check(element, item, f"{path}[{index}]")
            return
        if origin is dict:
            if not isinstance(value, dict):
                self.fail(path, f"expected a map, got {describe(value)}")
                return
            _, item = typing.get_args(annotation)
            for key, element in value.items():
                if not isinstance(key, str):
                    self.fail(path, f"map key {key!r} is not a string")
                    continue
                self.check(element, item, child_path(path, key))
            return
        if is_model(annotation):
            if is_one_of(annotation):
                self.one_of(value, annotation, path)
            else:
                self.model(value, annotation, path)
            return
        self.leaf(value, annotation, path)

    def leaf(self, value: object, annotation: object, path: str) -> None:
        """A scalar, checked strictly (a string is no integer, an integer no string)."""
        if annotation is datetime or annotation == typing.Optional[datetime]:
            strict = False  # timestamps are strings in YAML
        else:
            strict = True
        try:
            adapter(annotation).validate_python(value, strict=strict)
        except pydantic.ValidationError as error:
            wanted = error.errors()[0]["msg"]
            self.fail(path, f"wrong type: {wanted}, got {describe(value)}")

    def one_of(self, value: object, model: type[pydantic.BaseModel], path: str) -> None:
        try:
            model.from_json(json.dumps(value))
        except (pydantic.ValidationError, ValueError):
            kinds = sorted(model.model_fields["one_of_schemas"].default or ())
            self.fail(path, f"wrong type: expected {' or '.join(kinds)} ({model.__name__}), got {describe(value)}")

    def model(self, value: object, model: type[pydantic.BaseModel], path: str) -> None:
        if not isinstance(value, dict):
            self.fail(path, f"expected a map ({model.__name__}), got {describe(value)}")
            return
        fields = {(info.alias or name): (name, info) for name, info in model.model_fields.items()}
        for key, element in value.items():
            here = child_path(path, str(key))
            if key not in fields:
                close = difflib.get_close_matches(str(key), fields, n=1)
                hint = f"; did you mean {close[0]}?" if close else ""
                self.fail(here, f"unknown field (not in {model.__name__}){hint}")
                continue
            name, info = fields[key]
            annotation = info.annotation
            if info.metadata:
                annotation = typing.Annotated[(annotation, *info.metadata)]
            before = len(self.problems)
            self.check(element, annotation, here)
            if len(self.problems) == before and element is not None:
                self.enums(element, model, name, key, here)
        for key, (_, info) in fields.items():
            if info.is_required() and key not in value:
                self.fail(child_path(path, key), f"missing (required by {model.__name__})")

    def enums(self, value: object, model: type[pydantic.BaseModel], name: str, key: str, path: str) -> None:
        """The model's own field validators (the Kubernetes enums) and the JobSet enums."""
        for decorator in model.__pydantic_decorators__.field_validators.values():
            if name in decorator.info.fields:
                try:
                    getattr(model, decorator.cls_var_name)(value)
                except (ValueError, TypeError) as error:
                    self.fail(path, f"{error}, got {describe(value)}")
        allowed = JOBSET_ENUMS.get((model.__name__, key))
        if allowed and value not in allowed:
            self.fail(path, f"must be one of {', '.join(allowed)}, got {describe(value)}")


def check_references(spec: dict, walker: Walker) -> None:
    """Names that must be replicated jobs of the set (the JobSet webhook checks the same)."""
    jobs = [job.get("name") for job in spec.get("replicatedJobs") or [] if isinstance(job, dict)]

    def must_name_a_job(name: object, path: str, before: str | None = None) -> None:
        if name not in jobs:
            known = ", ".join(str(job) for job in jobs)
            walker.fail(path, f"{name!r} is not a replicated job of this JobSet ({known})")
        elif before is not None and jobs.index(name) >= jobs.index(before):
            walker.fail(path, f"{name!r} is not listed before {before!r}: dependsOn names a preceding job")

    for index, job in enumerate(spec.get("replicatedJobs") or []):
        if not isinstance(job, dict):
            continue
        depends = job.get("dependsOn") or []
        path = f"spec.replicatedJobs[{index}].dependsOn"
        if depends and index == 0:
            walker.fail(path, "the first replicated job cannot depend on another")
        for position, dependency in enumerate(depends):
            if isinstance(dependency, dict):
                must_name_a_job(dependency.get("name"), f"{path}[{position}].name", before=job.get("name"))
    success = spec.get("successPolicy") or {}
    for position, name in enumerate(success.get("targetReplicatedJobs") or []):
        must_name_a_job(name, f"spec.successPolicy.targetReplicatedJobs[{position}]")
    for rule_index, rule in enumerate((spec.get("failurePolicy") or {}).get("rules") or []):
        for position, name in enumerate(rule.get("targetReplicatedJobs") or [] if isinstance(rule, dict) else []):
            must_name_a_job(name, f"spec.failurePolicy.rules[{rule_index}].targetReplicatedJobs[{position}]")
    coordinator = spec.get("coordinator")
    if isinstance(coordinator, dict) and "replicatedJob" in coordinator:
        must_name_a_job(coordinator["replicatedJob"], "spec.coordinator.replicatedJob")
    if (spec.get("startupPolicy") or {}).get("startupPolicyOrder") == "InOrder" and any(
        isinstance(job, dict) and job.get("dependsOn") for job in spec.get("replicatedJobs") or []
    ):
        walker.fail("spec.startupPolicy", "startupPolicy InOrder and dependsOn are mutually exclusive")


def validate_jobset(document: dict) -> list[str]:
    """The problems of one JobSet document, each 'path: what'."""
    walker = Walker()
    walker.check(document, JobsetV1alpha2JobSet, "")
    if isinstance(document.get("spec"), dict):
        check_references(document["spec"], walker)
    return walker.problems


def run_kubernetes_validate(executable: str, documents: list[dict]) -> list[str]:
    """Validates the other documents with `kubernetes-validate --strict`; its problems."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="pstrain-validate-") as file:
        yaml.safe_dump_all(documents, file, sort_keys=False)
        file.flush()
        try:
            result = subprocess.run(
                [executable, "--strict", file.name], capture_output=True, text=True, timeout=300
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            return [f"kubernetes-validate did not run: {error}"]
    output = (result.stdout + result.stderr).replace(file.name, "(rendered)")
    problems = [line for line in output.splitlines() if line.startswith(("ERROR", "WARN"))]
    if result.returncode != 0 and not problems:
        problems = [f"kubernetes-validate exited {result.returncode}: {output.strip()[-500:]}"]
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Validate rendered manifests offline: JobSets with the kubeflow_trainer_api "
        "models (strictly: unknown fields fail), the rest with kubernetes-validate --strict."
    )
    parser.add_argument("files", nargs="+", help="rendered YAML (kubectl kustomize output); - for stdin")
    parser.add_argument("--kubernetes-validate", help="its executable (default: found on PATH)")
    arguments = parser.parse_args()

    documents: list[tuple[str, int, dict]] = []
    for name in arguments.files:
        try:
            text = sys.stdin.read() if name == "-" else open(name, encoding="utf-8").read()
            loaded = list(yaml.safe_load_all(text))
        except (OSError, yaml.YAMLError) as error:
            print(f"validate.py: cannot read {name}: {error}", file=sys.stderr)
            return 2
        for index, document in enumerate(loaded):
            if document is None:
                continue
            if not isinstance(document, dict):
                print(f"{name} document {index + 1}: not a map", file=sys.stderr)
                return 1
            documents.append((name, index + 1, document))

    problems: list[str] = []
    others: list[dict] = []
    jobsets = 0
    for name, index, document in documents:
        api_version, kind = document.get("apiVersion"), document.get("kind")
        label = f"{name} {kind}/{(document.get('metadata') or {}).get('name')}"
        if kind == "JobSet" or str(api_version).startswith("jobset.x-k8s.io/"):
            if api_version != JOBSET_API_VERSION or kind != "JobSet":
                problems.append(f"{label}: only kind JobSet of {JOBSET_API_VERSION} is known, not {kind} of {api_version}")
                continue
            jobsets += 1
            problems += [f"{label}: {problem}" for problem in validate_jobset(document)]
        else:
            others.append(document)
    if others:
        executable = arguments.kubernetes_validate or shutil.which("kubernetes-validate")
        if executable is None:
            print("validate.py: kubernetes-validate not found (pip install kubernetes-validate)", file=sys.stderr)
            return 2
        problems += run_kubernetes_validate(executable, others)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"validate.py: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"valid: {jobsets} JobSet(s) against the kubeflow_trainer_api models, {len(others)} other document(s) with kubernetes-validate --strict")
    return 0


if __name__ == "__main__":
    sys.exit(main())
