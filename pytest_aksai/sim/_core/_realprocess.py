"""Containers the simulated kubelet runs as real processes on this machine (the load client's workers).

A command handler returns `CommandResult(process=RealProcess(argv))`; the kubelet then starts `argv` with
the container's environment (literal `env` values, and `JOB_COMPLETION_INDEX` from the pod's Indexed Job
annotation as the real Job controller injects it), its ConfigMap volumes written to a folder of its own
(arguments under a mount path point there), stdout and stderr streamed to the pod's log, and the process's
exit code as the container's. A real process has no cluster DNS: `http://<service>.<namespace>.svc…`
URLs in its arguments, environment and mounted files are rewritten to the 127.0.0.1 port of a Ready pod
behind the Service, as kube-proxy would route them.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_aksai.sim.contract import HTTP_PORT_ANNOTATION

from . import _commands

INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
_SERVICE_URL = re.compile(r"http://([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?(?::(\d+))?")


@dataclass(frozen=True)
class RealProcess:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


def _ready(pod: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def rewrite_service_urls(text: str, store: Any) -> str:
    """Service URLs → the local address of a Ready pod behind the Service (unresolvable ones stay)."""

    def local(match: re.Match[str]) -> str:
        name, namespace = match.group(1), match.group(2)
        service = store.try_get(store.resource("v1", "services"), name, namespace)
        selector = ((service or {}).get("spec") or {}).get("selector") or {}
        if not selector:
            return match.group(0)
        for pod in store.list(store.resource("v1", "pods"), namespace):
            labels = pod["metadata"].get("labels") or {}
            port = (pod["metadata"].get("annotations") or {}).get(HTTP_PORT_ANNOTATION)
            if port and _ready(pod) and all(labels.get(k) == v for k, v in selector.items()):
                return f"http://127.0.0.1:{port}"
        return match.group(0)

    return _SERVICE_URL.sub(local, text)


def prepare(
    process: RealProcess, pod: Mapping[str, Any], container: Mapping[str, Any], store: Any, root: Path
) -> tuple[list[str], dict[str, str]]:
    """The argv and environment to start: volumes written under `root`, service URLs made local."""
    namespace = pod["metadata"]["namespace"]
    volumes = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or []}
    mounts: dict[str, Path] = {}
    for mount in container.get("volumeMounts") or []:
        source = (volumes.get(mount.get("name")) or {}).get("configMap")
        if not source:
            continue
        cm = store.try_get(store.resource("v1", "configmaps"), source.get("name", ""), namespace) or {}
        folder = root / str(mount["mountPath"]).strip("/")
        folder.mkdir(parents=True, exist_ok=True)
        for key, value in (cm.get("data") or {}).items():
            (folder / key).write_text(rewrite_service_urls(str(value), store), encoding="utf-8")
        mounts[str(mount["mountPath"]).rstrip("/")] = folder

    def local_path(arg: str) -> str:
        for mount_path, folder in mounts.items():
            if arg == mount_path or arg.startswith(mount_path + "/"):
                return str(folder) + arg[len(mount_path) :]
        return rewrite_service_urls(arg, store)

    env = {str(e["name"]): rewrite_service_urls(str(e["value"]), store)
           for e in container.get("env") or [] if "value" in e}  # fmt: skip
    index = (pod["metadata"].get("annotations") or {}).get(INDEX_ANNOTATION)
    if index is not None:
        env["JOB_COMPLETION_INDEX"] = index
    env.update(process.env)
    return [local_path(a) for a in process.argv], env


def _load_worker(ctx: _commands.CommandContext) -> _commands.CommandResult:
    """`aksai-load …` (pytest-aksai's console script): the load client, for real, with this interpreter."""
    return _commands.CommandResult(
        exit_code=None, process=RealProcess([sys.executable, "-m", "pytest_aksai.load", *ctx.argv[1:]])
    )


_commands.register_command("aksai-load", _load_worker)
