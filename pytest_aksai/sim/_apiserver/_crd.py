"""CustomResourceDefinitions: validation, status, and the resource types an established CRD serves."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._errors import FieldError
from ._types import ResourceType, ScaleSpec

if TYPE_CHECKING:
    from ._store import Obj, Store


def validate(store: Store, obj: Obj, old: Obj | None) -> list[FieldError]:
    """Validate and default a CRD in place, and set its status as an established CRD's."""
    errors: list[FieldError] = []
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [FieldError("FieldValueRequired", "spec")]
    group = spec.get("group")
    names: dict[str, Any] = spec["names"] if isinstance(spec.get("names"), dict) else {}
    plural = names.get("plural")
    if not group:
        errors.append(FieldError("FieldValueRequired", "spec.group"))
    elif "." not in str(group):
        errors.append(
            FieldError("FieldValueInvalid", "spec.group", group, "should be a domain with at least one dot")
        )
    if not plural:
        errors.append(FieldError("FieldValueRequired", "spec.names.plural"))
    if not names.get("kind"):
        errors.append(FieldError("FieldValueRequired", "spec.names.kind"))
    if group and plural and obj["metadata"].get("name") != f"{plural}.{group}":
        errors.append(
            FieldError(
                "FieldValueInvalid",
                "metadata.name",
                obj["metadata"].get("name"),
                'must be spec.names.plural+"."+spec.group',
            )
        )
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        errors.append(
            FieldError(
                "FieldValueNotSupported",
                "spec.scope",
                spec.get("scope"),
                'supported values: "Cluster", "Namespaced"',
            )
        )
    versions = spec.get("versions")
    if not isinstance(versions, list) or not versions:
        errors.append(
            FieldError(
                "FieldValueInvalid",
                "spec.versions",
                versions,
                "must have exactly one version marked as storage version",
            )
        )
        return errors
    storage = [v for v in versions if isinstance(v, dict) and v.get("storage")]
    if len(storage) != 1:
        errors.append(
            FieldError(
                "FieldValueInvalid",
                "spec.versions",
                versions,
                "must have exactly one version marked as storage version",
            )
        )
    for i, version in enumerate(versions):
        if not isinstance(version, dict) or not version.get("name"):
            errors.append(FieldError("FieldValueRequired", f"spec.versions[{i}].name"))
            continue
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        if not isinstance(schema, dict):
            errors.append(
                FieldError(
                    "FieldValueRequired",
                    f"spec.versions[{i}].schema.openAPIV3Schema",
                    detail="schemas are required",
                )
            )
        elif schema.get("type") != "object":
            errors.append(
                FieldError(
                    "FieldValueInvalid",
                    f"spec.versions[{i}].schema.openAPIV3Schema.type",
                    schema.get("type"),
                    "must be object at the root",
                )
            )
    if errors:
        return errors
    if old is not None and (old.get("spec") or {}).get("scope") != spec.get("scope"):
        errors.append(FieldError("FieldValueInvalid", "spec.scope", spec.get("scope"), "field is immutable"))
    spec.setdefault("conversion", {"strategy": "None"})
    names.setdefault("singular", str(names.get("kind", "")).lower())
    names.setdefault("listKind", f"{names.get('kind')}List")
    stored_versions = list((old or {}).get("status", {}).get("storedVersions") or [])
    if storage and storage[0]["name"] not in stored_versions:
        stored_versions.append(storage[0]["name"])
    now = store.clock.timestamp()
    obj["status"] = {
        "acceptedNames": dict(names),
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "reason": "NoConflicts",
                "message": "no conflicts found",
                "lastTransitionTime": now,
            },
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
                "lastTransitionTime": now,
            },
        ],
        "storedVersions": stored_versions,
    }
    return errors


def types_of(crd: Obj) -> list[ResourceType]:
    spec = crd["spec"]
    names = spec["names"]
    out = []
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        subresources = version.get("subresources") or {}
        scale_def = subresources.get("scale")
        scale = None
        if isinstance(scale_def, dict):
            scale = ScaleSpec(
                scale_def.get("specReplicasPath", ".spec.replicas"),
                scale_def.get("statusReplicasPath", ".status.replicas"),
                scale_def.get("labelSelectorPath"),
            )
        selectable = frozenset(
            str(f.get("jsonPath", "")).lstrip(".") for f in version.get("selectableFields") or []
        )
        out.append(
            ResourceType(
                group=spec["group"],
                version=version["name"],
                plural=names["plural"],
                kind=names["kind"],
                namespaced=spec.get("scope") == "Namespaced",
                singular=names.get("singular", names["kind"].lower()),
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=frozenset(k for k in ("status", "scale") if k in subresources),
                scale=scale,
                schema=(version.get("schema") or {}).get("openAPIV3Schema"),
                printer_columns=tuple(version.get("additionalPrinterColumns") or ()),
                field_selectors=selectable,
                custom=True,
                storage=bool(version.get("storage")),
                extra={
                    "deprecated": bool(version.get("deprecated")),
                    "deprecationWarning": version.get("deprecationWarning"),
                },
            )
        )
    return out


def install(store: Store, crd: Obj) -> None:
    spec: dict[str, Any] = crd["spec"]
    store.register_types(spec["group"], spec["names"]["plural"], types_of(crd))
