"""ControllerRevisions: the template history of StatefulSets and DaemonSets, as their controllers keep it,
so `kubectl rollout history|undo sts/x` and `ds/x` work.

Each distinct pod template is one revision named `<owner>-<hash>`, owned by the workload, labelled with its
selector's labels, whose `data` is the strategic-merge patch that restores the template
(`{"spec": {"template": {..., "$patch": "replace"}}}`, what kubectl applies on undo). Returning to an older
template reuses its revision and moves it to the newest number, as upstream's history does; revisions
beyond `revisionHistoryLimit` that no pod runs are deleted.
"""

from __future__ import annotations

from typing import Any

from pytest_aksai.sim._core._podutil import is_controlled_by, owner_reference

Obj = dict[str, Any]
HASH_LABEL = "controller.kubernetes.io/hash"


def clean_template(value: Any) -> Any:
    """The template as Go sees it: a null field is an absent one."""
    return _clean(value)


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def sync_revisions(controller: Any, owner: Obj, revision_hash: str, in_use: set[str]) -> Obj:
    """The ControllerRevision of `owner`'s current template (created or renumbered); prunes old ones.
    `in_use`: revision hashes pods still run."""
    meta = owner["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    rt = controller.rt("apps/v1", "controllerrevisions")
    revisions = [
        r for r in controller.list("apps/v1", "controllerrevisions", namespace) if is_controlled_by(r, owner)
    ]
    template = _clean((owner.get("spec") or {}).get("template") or {})
    newest = max((int(r.get("revision", 0)) for r in revisions), default=0)
    current = next(
        (
            r
            for r in revisions
            if _clean((r.get("data") or {}).get("spec", {}).get("template"))
            == {**template, "$patch": "replace"}
        ),
        None,
    )
    if current is None:
        labels = dict(((owner.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
        labels[HASH_LABEL] = revision_hash
        current = controller.store.create(
            rt,
            {
                "apiVersion": "apps/v1",
                "kind": "ControllerRevision",
                "metadata": {
                    "name": f"{name}-{revision_hash}",
                    "namespace": namespace,
                    "labels": labels,
                    "ownerReferences": [owner_reference(owner)],
                },
                "data": {"spec": {"template": {**template, "$patch": "replace"}}},
                "revision": newest + 1,
            },
        )
        revisions.append(current)
    elif int(current.get("revision", 0)) != newest:
        current["revision"] = newest + 1
        current = controller.store.update(rt, current)
    limit = int((owner.get("spec") or {}).get("revisionHistoryLimit", 10))
    old = sorted(
        (r for r in revisions if r["metadata"]["name"] != current["metadata"]["name"]),
        key=lambda r: int(r.get("revision", 0)),
    )
    removable = [r for r in old if (r["metadata"].get("labels") or {}).get(HASH_LABEL) not in in_use]
    for revision in removable[: max(len(old) - limit, 0)]:
        controller.store.delete(rt, revision["metadata"]["name"], namespace)
    result: Obj = current
    return result
