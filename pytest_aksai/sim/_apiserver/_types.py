"""Resource types the API server serves: the built-in kinds and those CustomResourceDefinitions add."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ScaleSpec:
    spec_replicas_path: str = ".spec.replicas"
    status_replicas_path: str = ".status.replicas"
    label_selector_path: str | None = ".status.selector"


@dataclass(frozen=True, eq=False)
class ResourceType:
    """One served group/version/resource. Objects live in the bucket `(group, plural)`, shared by every served
    version of the resource (the sim does no conversion beyond rewriting `apiVersion`)."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = _ALL_VERBS
    subresources: frozenset[str] = frozenset()
    scale: ScaleSpec | None = None
    has_generation: bool = True
    schema: dict[str, Any] | None = None
    """The structural OpenAPI schema (custom resources only)."""
    printer_columns: tuple[dict[str, Any], ...] = ()
    field_selectors: frozenset[str] = frozenset()
    """Field labels beyond metadata.name/metadata.namespace."""
    custom: bool = False
    storage: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def bucket(self) -> tuple[str, str]:
        return (self.group, self.plural)

    @property
    def group_resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    def __repr__(self) -> str:
        return f"ResourceType({self.api_version}, {self.plural})"


def _rt(api_version: str, plural: str, kind: str, **kw: Any) -> ResourceType:
    group, _, version = api_version.rpartition("/")
    kw.setdefault("singular", kind.lower())
    if "subresources" in kw:
        kw["subresources"] = frozenset(kw["subresources"])
    if "field_selectors" in kw:
        kw["field_selectors"] = frozenset(kw["field_selectors"])
    return ResourceType(group=group, version=version, plural=plural, kind=kind, **kw)


_POD_FIELDS = (
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
)
_EVENT_FIELDS = (
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
)
_SCALE = ScaleSpec()

BUILTIN_TYPES: tuple[ResourceType, ...] = (
    _rt(
        "v1",
        "namespaces",
        "Namespace",
        namespaced=False,
        short_names=("ns",),
        subresources={"status", "finalize"},
        has_generation=False,
        field_selectors=("status.phase",),
    ),
    _rt(
        "v1",
        "pods",
        "Pod",
        short_names=("po",),
        categories=("all",),
        subresources={
            "status",
            "log",
            "binding",
            "eviction",
            "ephemeralcontainers",
            "proxy",
            "portforward",
            "exec",
            "attach",
        },
        field_selectors=_POD_FIELDS,
    ),
    _rt(
        "v1",
        "services",
        "Service",
        short_names=("svc",),
        categories=("all",),
        subresources={"status", "proxy"},
        has_generation=False,
    ),
    _rt("v1", "endpoints", "Endpoints", singular="endpoints", short_names=("ep",), has_generation=False),
    _rt("v1", "configmaps", "ConfigMap", short_names=("cm",), has_generation=False),
    _rt("v1", "secrets", "Secret", has_generation=False, field_selectors=("type",)),
    _rt(
        "v1",
        "serviceaccounts",
        "ServiceAccount",
        short_names=("sa",),
        subresources={"token"},
        has_generation=False,
    ),
    _rt(
        "v1",
        "nodes",
        "Node",
        namespaced=False,
        short_names=("no",),
        subresources={"status", "proxy"},
        has_generation=False,
        field_selectors=("spec.unschedulable",),
    ),
    _rt("v1", "events", "Event", short_names=("ev",), has_generation=False, field_selectors=_EVENT_FIELDS),
    _rt(
        "v1",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        short_names=("pvc",),
        subresources={"status"},
        has_generation=False,
    ),
    _rt(
        "v1",
        "resourcequotas",
        "ResourceQuota",
        short_names=("quota",),
        subresources={"status"},
        has_generation=False,
    ),
    _rt("v1", "limitranges", "LimitRange", short_names=("limits",), has_generation=False),
    _rt(
        "apps/v1",
        "deployments",
        "Deployment",
        short_names=("deploy",),
        categories=("all",),
        subresources={"status", "scale"},
        scale=_SCALE,
    ),
    _rt(
        "apps/v1",
        "replicasets",
        "ReplicaSet",
        short_names=("rs",),
        categories=("all",),
        subresources={"status", "scale"},
        scale=_SCALE,
    ),
    _rt(
        "apps/v1",
        "statefulsets",
        "StatefulSet",
        short_names=("sts",),
        categories=("all",),
        subresources={"status", "scale"},
        scale=_SCALE,
    ),
    _rt(
        "apps/v1",
        "daemonsets",
        "DaemonSet",
        short_names=("ds",),
        categories=("all",),
        subresources={"status"},
    ),
    _rt("apps/v1", "controllerrevisions", "ControllerRevision", has_generation=False),
    _rt("batch/v1", "jobs", "Job", categories=("all",), subresources={"status"}),
    _rt(
        "autoscaling/v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        short_names=("hpa",),
        categories=("all",),
        subresources={"status"},
    ),
    _rt(
        "autoscaling/v1",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        short_names=("hpa",),
        categories=("all",),
        subresources={"status"},
        storage=False,
    ),
    _rt("coordination.k8s.io/v1", "leases", "Lease", has_generation=False),
    _rt("discovery.k8s.io/v1", "endpointslices", "EndpointSlice", has_generation=False),
    _rt(
        "events.k8s.io/v1",
        "events",
        "Event",
        short_names=("ev",),
        has_generation=False,
        field_selectors=("reason", "type", "regarding.kind", "regarding.name", "regarding.namespace"),
    ),
    _rt(
        "policy/v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        short_names=("pdb",),
        subresources={"status"},
    ),
    _rt("networking.k8s.io/v1", "ingresses", "Ingress", short_names=("ing",), subresources={"status"}),
    _rt("networking.k8s.io/v1", "networkpolicies", "NetworkPolicy", short_names=("netpol",)),
    _rt(
        "storage.k8s.io/v1",
        "storageclasses",
        "StorageClass",
        namespaced=False,
        short_names=("sc",),
        has_generation=False,
    ),
    _rt(
        "scheduling.k8s.io/v1",
        "priorityclasses",
        "PriorityClass",
        namespaced=False,
        short_names=("pc",),
        has_generation=False,
    ),
    _rt("rbac.authorization.k8s.io/v1", "roles", "Role", has_generation=False),
    _rt("rbac.authorization.k8s.io/v1", "rolebindings", "RoleBinding", has_generation=False),
    _rt(
        "rbac.authorization.k8s.io/v1", "clusterroles", "ClusterRole", namespaced=False, has_generation=False
    ),
    _rt(
        "rbac.authorization.k8s.io/v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        namespaced=False,
        has_generation=False,
    ),
    _rt(
        "apiextensions.k8s.io/v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
        short_names=("crd", "crds"),
        subresources={"status"},
    ),
    _rt(
        "admissionregistration.k8s.io/v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        namespaced=False,
    ),
    _rt(
        "admissionregistration.k8s.io/v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        namespaced=False,
    ),
    _rt(
        "authentication.k8s.io/v1",
        "tokenreviews",
        "TokenReview",
        namespaced=False,
        verbs=("create",),
        has_generation=False,
    ),
    _rt(
        "authorization.k8s.io/v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        namespaced=False,
        verbs=("create",),
        has_generation=False,
    ),
    _rt(
        "authorization.k8s.io/v1",
        "subjectaccessreviews",
        "SubjectAccessReview",
        namespaced=False,
        verbs=("create",),
        has_generation=False,
    ),
    _rt("batch/v1", "cronjobs", "CronJob", short_names=("cj",), categories=("all",), subresources={"status"}),
    _rt(
        "v1",
        "persistentvolumes",
        "PersistentVolume",
        namespaced=False,
        short_names=("pv",),
        subresources={"status"},
        has_generation=False,
    ),
    _rt(
        "v1",
        "replicationcontrollers",
        "ReplicationController",
        short_names=("rc",),
        categories=("all",),
        subresources={"status", "scale"},
        scale=_SCALE,
    ),
    _rt("v1", "podtemplates", "PodTemplate", has_generation=False),
    _rt("networking.k8s.io/v1", "ingressclasses", "IngressClass", namespaced=False, has_generation=False),
    _rt(
        "apiregistration.k8s.io/v1",
        "apiservices",
        "APIService",
        namespaced=False,
        subresources={"status"},
    ),
    _rt(
        "certificates.k8s.io/v1",
        "certificatesigningrequests",
        "CertificateSigningRequest",
        namespaced=False,
        short_names=("csr",),
        subresources={"status", "approval"},
        has_generation=False,
    ),
    _rt(
        "authentication.k8s.io/v1",
        "selfsubjectreviews",
        "SelfSubjectReview",
        namespaced=False,
        verbs=("create",),
        has_generation=False,
    ),
    _rt(
        "authorization.k8s.io/v1",
        "selfsubjectrulesreviews",
        "SelfSubjectRulesReview",
        namespaced=False,
        verbs=("create",),
        has_generation=False,
    ),
    _rt(
        "authorization.k8s.io/v1",
        "localsubjectaccessreviews",
        "LocalSubjectAccessReview",
        verbs=("create",),
        has_generation=False,
    ),
)

VIRTUAL_KINDS = frozenset(
    {
        "TokenReview",
        "SelfSubjectAccessReview",
        "SubjectAccessReview",
        "LocalSubjectAccessReview",
        "SelfSubjectReview",
        "SelfSubjectRulesReview",
    }
)
"""Create-only kinds the server answers without storing anything."""
