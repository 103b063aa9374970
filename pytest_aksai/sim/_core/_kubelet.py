"""The kubelets of every node: pod sandboxes, image pulls, simulated processes, readiness and pod status.

One controller plays the kubelet of every node; a node whose kubelet is down (`node-not-ready`) is left
alone, so its pods keep their last status until the node lifecycle controller steps in. The runtime state
of a pod (when each container started, what its process does) lives here, as it lives in the container
runtime; the API object carries only what a kubelet reports.

Timings are cluster seconds: sandbox 2 s, image pull 6 s on first use per node (registered large images
take longer), create+start 0.5 s, readiness after the probes' `initialDelaySeconds`.

Volumes: a pod's inline CSI volumes are published through the driver an add-on registered
(`sim._core._csi`) before its containers start; a refusal keeps them in ContainerCreating with a
`FailedMount` event, retried with back-off (0.5 s doubling to 2 min 2 s). Projected service-account tokens
are the kubelet's: requested once per volume source and replaced when older than 80 % of their lifetime
or 24 h (the `wi-token-not-rotated` fault stops the replacing), so a reader sees the same token until then.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import math
import os
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_aksai.sim._apiserver import HTTP_PORT_ANNOTATION
from pytest_aksai.sim._core import _commands, _curl, _realprocess  # noqa: F401  (_curl registers `curl`)
from pytest_aksai.sim._core._csi import TOKENS_ATTRIBUTE, CsiMountError, csi_volumes
from pytest_aksai.sim._core._framework import Controller, Obj, Watch, object_key, split_key
from pytest_aksai.sim._core._nodes import kubelet_down
from pytest_aksai.sim._core._podutil import set_condition
from pytest_aksai.sim.contract import Fault

SANDBOX_SECONDS = 2.0
DEFAULT_PULL_SECONDS = 6.0
START_SECONDS = 0.5
TERMINATE_SECONDS = 1.0
BACKOFF_INITIAL = 10.0
BACKOFF_MAX = 300.0
MOUNT_BACKOFF_INITIAL = 0.5
MOUNT_BACKOFF_MAX = 122.0
TOKEN_REFRESH_FRACTION = 0.8
TOKEN_REFRESH_MAX_AGE = 86400.0

_PULL_SECONDS: list[tuple[str, float]] = []
_KUBELETS: dict[int, KubeletController] = {}
"""The kubelet controller of each running simulated cluster, by `id(ctx)`."""


def register_pull_time(image_substring: str, cluster_seconds: float) -> None:
    """How long the first pull of matching images takes on a node (large model-server images)."""
    _PULL_SECONDS.append((image_substring, cluster_seconds))


def _pull_seconds(image: str) -> float:
    for substring, seconds in reversed(_PULL_SECONDS):
        if substring in image:
            return seconds
    return DEFAULT_PULL_SECONDS


def _backoff(failures: int) -> float:
    return min(BACKOFF_INITIAL * 2.0 ** max(failures - 1, 0), BACKOFF_MAX)


def _image_ref(image: str) -> str:
    name = image.split("@", 1)[0]
    repo = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
    if "/" not in repo:
        repo = f"docker.io/library/{repo}"
    elif "." not in repo.split("/", 1)[0]:
        repo = f"docker.io/{repo}"
    return f"{repo}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


@dataclass
class _Container:
    spec: Obj
    init: bool
    state: str = "waiting"  # waiting | running | terminated
    reason: str = "ContainerCreating"
    message: str | None = None
    next_at: float = 0.0
    """When the next step of this container is due (cluster elapsed seconds)."""
    step: str = "pull"  # pull | start | run | restart | done
    pull_failures: int = 0
    restarts: int = 0
    started_at: str | None = None
    started: float = 0.0
    ready_at: float | None = None
    exit_at: float | None = None
    result: _commands.CommandResult | None = None
    finished_at: str | None = None
    container_id: str = ""
    last_state: Obj = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def image(self) -> str:
        return str(self.spec.get("image") or "")


@dataclass
class _PodRun:
    uid: str
    node: str
    created: float
    start_time: str
    pod_ip: str
    host_ip: str
    containers: list[_Container]
    killing_at: float | None = None
    volumes: dict[str, dict[str, bytes]] = field(default_factory=dict)
    """Files of the published CSI volumes, by volume name."""
    drivers: dict[str, str] = field(default_factory=dict)
    """The CSI driver of each published volume."""
    mounting: asyncio.Task[None] | None = None
    mount_failures: int = 0
    mount_retry_at: float = 0.0
    tokens: dict[tuple[str | None, int], tuple[str, float, float]] = field(default_factory=dict)
    """Projected tokens by (audience, expirationSeconds): (token, issued at, lifetime), cluster seconds."""


def _pod_event(_self: KubeletController, _event_type: str, pod: Obj) -> list[str]:
    return [object_key(pod)] if (pod.get("spec") or {}).get("nodeName") else []


def _node_event(self: KubeletController, _event_type: str, node: Obj) -> list[str]:
    name = node["metadata"]["name"]
    return [key for key, run in self.runs.items() if run.node == name]


class KubeletController(Controller):
    name = "kubelet"
    watches = (Watch("v1", "pods", _pod_event), Watch("v1", "nodes", _node_event))

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.runs: dict[str, _PodRun] = {}
        self.processes: dict[tuple[str, str], asyncio.Task[None]] = {}
        """Real processes of running containers, by (pod uid, container name)."""
        self.images: dict[str, set[str]] = {}
        self._ips: dict[str, int] = {}
        _KUBELETS[id(ctx)] = self

    def crash(self, namespace: str, pod: str, container: str, *, exit_code: int, output: str) -> bool:
        """The container's process exits now with `exit_code` (after writing `output` to its log), as a
        process that fails after start-up does; the restart policy and back-off then apply. False when the
        container is not running."""
        key = f"{namespace}/{pod}"
        run = self.runs.get(key)
        c = next((c for c in (run.containers if run else []) if c.name == container), None)
        if c is None or c.state != "running" or c.result is None:
            return False
        now = self.clock.elapsed()
        c.result = dataclasses.replace(c.result, exit_code=exit_code, duration=now - c.started, reason=None)
        c.exit_at, c.step, c.next_at = now, "run", now
        if output:
            self.ctx.pod_logs.append(namespace, pod, container, output)
        self.queue.add(key)
        return True

    # ---- reconcile -----------------------------------------------------------------------------------
    async def reconcile(self, key: str) -> float | None:
        pod = self.get("v1", "pods", key)
        run = self.runs.get(key)
        if pod is None or (run is not None and run.uid != pod["metadata"]["uid"]):
            self._forget(key)
            namespace, name = split_key(key)
            self.ctx.pod_logs.forget(namespace or "", name)
            if pod is None:
                return None
            run = None
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            return None
        node = self.get("v1", "nodes", node_name)
        if node is None:
            # The pod garbage collector removes pods bound to nodes that no longer exist.
            self.store.delete(
                self.rt("v1", "pods"),
                pod["metadata"]["name"],
                pod["metadata"]["namespace"],
                grace_period_seconds=0,
            )
            self.runs.pop(key, None)
            return None
        if kubelet_down(self.ctx, node_name):
            return 10.0
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed") and run is None:
            return self._finish_deletion(pod, None) if pod["metadata"].get("deletionTimestamp") else None
        if run is None:
            run = self._admit(pod, node)
            self.runs[key] = run
        now = self.clock.elapsed()
        if pod["metadata"].get("deletionTimestamp"):
            return self._finish_deletion(pod, run)
        waiting = self._mount_volumes(key, pod, run, now)
        if waiting is not None:
            self._write_status(pod, run)
            return waiting
        self._advance(pod, node, run, now)
        self._write_status(pod, run)
        pending = [c.next_at for c in run.containers if c.step != "done" and c.next_at > now]
        return (min(pending) - now) if pending else None

    def _admit(self, pod: Obj, node: Obj) -> _PodRun:
        spec = pod.get("spec") or {}
        node_ip = next(
            (
                a["address"]
                for a in (node.get("status") or {}).get("addresses") or []
                if a.get("type") == "InternalIP"
            ),
            "10.224.0.4",
        )
        now = self.clock.elapsed()
        containers = [
            _Container(c, True, next_at=now + SANDBOX_SECONDS) for c in spec.get("initContainers") or []
        ]
        waiting = "PodInitializing" if containers else "ContainerCreating"
        containers += [
            _Container(c, False, reason=waiting, next_at=now + SANDBOX_SECONDS)
            for c in spec.get("containers") or []
        ]
        return _PodRun(
            pod["metadata"]["uid"],
            node["metadata"]["name"],
            now,
            self.clock.timestamp(),
            node_ip if spec.get("hostNetwork") else self._pod_ip(node),
            node_ip,
            containers,
        )

    def _pod_ip(self, node: Obj) -> str:
        cidr = (node.get("spec") or {}).get("podCIDR") or "10.244.0.0/24"
        base = cidr.split("/", 1)[0].rsplit(".", 1)[0]
        name = node["metadata"]["name"]
        self._ips[name] = self._ips.get(name, 9) % 250 + 1
        return f"{base}.{self._ips[name] + 1}"

    # ---- volumes and tokens --------------------------------------------------------------------------
    def _forget(self, key: str) -> None:
        run = self.runs.pop(key, None)
        if run is None:
            return
        if run.mounting is not None:
            run.mounting.cancel()
        namespace, name = split_key(key)
        gone = {"metadata": {"namespace": namespace, "name": name, "uid": run.uid}}
        for volume, driver_name in run.drivers.items():
            driver = self.ctx.csi_drivers.get(driver_name)
            if driver is not None:
                driver.unpublish(gone, volume)

    def _mount_volumes(self, key: str, pod: Obj, run: _PodRun, now: float) -> float | None:
        """None when every CSI volume is published; else the seconds until the next attempt."""
        pending = [v for v in csi_volumes(pod) if v.get("name") not in run.volumes]
        if not pending:
            return None
        if run.mounting is not None:
            return 5.0
        if now < run.mount_retry_at:
            return run.mount_retry_at - now
        run.mounting = asyncio.create_task(self._publish(key, pod, run, pending), name=f"kubelet:mount:{key}")
        return 5.0

    async def _publish(self, key: str, pod: Obj, run: _PodRun, volumes: list[Obj]) -> None:
        try:
            for volume in volumes:
                name = str(volume.get("name"))
                csi = volume["csi"]
                driver_name = str(csi.get("driver") or "")
                driver = self.ctx.csi_drivers.get(driver_name)
                try:
                    if driver is None:
                        raise CsiMountError(
                            f"kubernetes.io/csi: mounter.SetUpAt failed to get CSI client: driver name "
                            f"{driver_name} not found in the list of registered CSI drivers"
                        )
                    attributes = dict(csi.get("volumeAttributes") or {})
                    attributes.update(self._pod_attributes(pod, driver.token_audiences))
                    files = await driver.publish(pod, volume, attributes)
                except CsiMountError as exc:
                    text = str(exc)
                    if not text.startswith("kubernetes.io/csi:"):
                        text = f"rpc error: code = Unknown desc = {text}"
                    self.event(
                        pod, "Warning", "FailedMount",
                        f'MountVolume.SetUp failed for volume "{name}" : {text}', "kubelet", run.node,
                    )  # fmt: skip
                    run.mount_failures += 1
                    delay = MOUNT_BACKOFF_INITIAL * 2.0 ** (run.mount_failures - 1)
                    run.mount_retry_at = self.clock.elapsed() + min(delay, MOUNT_BACKOFF_MAX)
                    return
                run.volumes[name] = files
                run.drivers[name] = driver_name
            run.mount_failures = 0
        finally:
            run.mounting = None
            if self.runs.get(key) is run:
                self.queue.add(key)

    def _pod_attributes(self, pod: Obj, audiences: tuple[str, ...]) -> dict[str, str]:
        """What the kubelet adds to a CSI volume's context: the pod's identity and, for the CSIDriver's
        tokenRequests, a fresh service-account token per audience bound to the pod."""
        import json

        meta = pod["metadata"]
        spec = pod.get("spec") or {}
        sa_name = str(spec.get("serviceAccountName") or "default")
        out = {
            "csi.storage.k8s.io/pod.name": str(meta["name"]),
            "csi.storage.k8s.io/pod.namespace": str(meta["namespace"]),
            "csi.storage.k8s.io/pod.uid": str(meta.get("uid", "")),
            "csi.storage.k8s.io/serviceAccount.name": sa_name,
            "csi.storage.k8s.io/ephemeral": "true",
        }
        tokens = getattr(self.store, "tokens", None)
        sa = self.store.try_get(self.rt("v1", "serviceaccounts"), sa_name, meta["namespace"])
        if audiences and tokens is not None and sa is not None:
            bound = {"kind": "Pod", "apiVersion": "v1", "name": meta["name"], "uid": meta.get("uid")}
            issued = {}
            for audience in audiences:
                token, exp = tokens.issue(
                    meta["namespace"], sa_name, sa["metadata"]["uid"], [audience], 3600, bound
                )
                issued[audience] = {"token": token, "expirationTimestamp": _rfc3339(exp)}
            out[TOKENS_ATTRIBUTE] = json.dumps(issued)
        return out

    def csi_files(self, pod: Obj, volume_name: str) -> dict[str, bytes]:
        run = self.runs.get(object_key(pod))
        if run is None or run.uid != pod["metadata"].get("uid"):
            return {}
        return run.volumes.get(volume_name, {})

    def projected_token(self, pod: Obj, audience: str | None, seconds: int) -> str | None:
        """The token the kubelet keeps in the pod's projected volume for (audience, seconds): requested on
        first use and replaced at 80 % of its lifetime (or after 24 h); None when the pod is not running here."""
        run = self.runs.get(object_key(pod))
        tokens = getattr(self.store, "tokens", None)
        if run is None or tokens is None or run.uid != pod["metadata"].get("uid"):
            return None
        meta = pod["metadata"]
        sa_name = str((pod.get("spec") or {}).get("serviceAccountName") or "default")
        sa = self.store.try_get(self.rt("v1", "serviceaccounts"), sa_name, meta["namespace"])
        if sa is None:
            return None
        now = self.clock.elapsed()
        held = run.tokens.get((audience, seconds))
        if held is not None:
            token, issued, lifetime = held
            age = now - issued
            due = age >= TOKEN_REFRESH_FRACTION * lifetime or age >= TOKEN_REFRESH_MAX_AGE
            if not due or self.ctx.faults.is_active(Fault.WI_TOKEN_NOT_ROTATED):
                return token
        lifetime = float(max(seconds, 600))
        bound = {"kind": "Pod", "apiVersion": "v1", "name": meta["name"], "uid": meta.get("uid")}
        audiences = [audience] if audience else [tokens.issuer]
        token, _ = tokens.issue(
            meta["namespace"], sa_name, sa["metadata"]["uid"], audiences, int(lifetime), bound
        )
        run.tokens[(audience, seconds)] = (str(token), now, lifetime)
        return str(token)

    # ---- the state machine ---------------------------------------------------------------------------
    def _advance(self, pod: Obj, node: Obj, run: _PodRun, now: float) -> None:
        restart_policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
        progressed = True
        while progressed:
            progressed = False
            for container in self._runnable(run):
                if container.step != "done" and container.next_at <= now:
                    self._step(pod, node, run, container, restart_policy, now)
                    progressed = True

    def _runnable(self, run: _PodRun) -> list[_Container]:
        """Init containers one after another, then every app container."""
        for container in run.containers:
            if container.init and not (
                container.step == "done" and container.result is not None and container.result.exit_code == 0
            ):
                return [container]
        return [c for c in run.containers if not c.init]

    def _step(
        self, pod: Obj, node: Obj, run: _PodRun, c: _Container, restart_policy: str, now: float
    ) -> None:
        if c.step == "pull":
            self._pull(pod, run, c, now)
        elif c.step == "pulled":
            seconds = c.next_at - c.started
            size = 20_000_000 + int(hashlib.sha256(c.image.encode()).hexdigest()[:8], 16) % 400_000_000
            self.event(
                pod,
                "Normal",
                "Pulled",
                f'Successfully pulled image "{c.image}" in {seconds:.3g}s '
                f"({seconds:.3g}s including waiting). Image size: {size} bytes.",
                "kubelet",
                run.node,
            )
            self.images.setdefault(run.node, set()).add(c.image)
            c.step, c.next_at = "start", now + START_SECONDS
        elif c.step in ("start", "restart"):
            self._start(pod, node, c, now)
        elif c.step == "run":
            self._exit(pod, c, restart_policy, now)

    def _pull(self, pod: Obj, run: _PodRun, c: _Container, now: float) -> None:
        cached = c.image in self.images.setdefault(run.node, set())
        policy = c.spec.get("imagePullPolicy") or "IfNotPresent"
        pattern = (
            self.ctx.faults.parameter(Fault.IMAGE_PULL_BACKOFF)
            if self.ctx.faults.is_active(Fault.IMAGE_PULL_BACKOFF)
            else None
        )
        failing = pattern is not None and (pattern == "" or pattern in c.image)
        if failing:
            c.pull_failures += 1
            if c.reason != "ErrImagePull":
                self.event(pod, "Normal", "Pulling", f'Pulling image "{c.image}"', "kubelet", run.node)
            detail = (
                f'rpc error: code = NotFound desc = failed to pull and unpack image "{c.image}": '
                f'failed to resolve reference "{c.image}": {c.image}: not found'
            )
            self.event(
                pod, "Warning", "Failed", f'Failed to pull image "{c.image}": {detail}', "kubelet", run.node
            )
            self.event(pod, "Warning", "Failed", "Error: ErrImagePull", "kubelet", run.node)
            self.event(pod, "Normal", "BackOff", f'Back-off pulling image "{c.image}"', "kubelet", run.node)
            self.event(pod, "Warning", "Failed", "Error: ImagePullBackOff", "kubelet", run.node)
            c.reason, c.message = "ImagePullBackOff", f'Back-off pulling image "{c.image}"'
            c.next_at = now + _backoff(c.pull_failures)
            return
        if cached and policy != "Always":
            self.event(
                pod,
                "Normal",
                "Pulled",
                f'Container image "{c.image}" already present on machine',
                "kubelet",
                run.node,
            )
            c.next_at = now + START_SECONDS
            c.step = "start"
        else:
            self.event(pod, "Normal", "Pulling", f'Pulling image "{c.image}"', "kubelet", run.node)
            c.started = now  # when the pull began, for the Pulled message
            c.step, c.next_at = "pulled", now + (0.5 if cached else _pull_seconds(c.image))
        c.reason, c.message = "ContainerCreating", None

    def _start(self, pod: Obj, node: Obj, c: _Container, now: float) -> None:
        host = node["metadata"]["name"]
        self.event(pod, "Normal", "Created", f"Created container {c.name}", "kubelet", host)
        self.event(pod, "Normal", "Started", f"Started container {c.name}", "kubelet", host)
        c.state, c.reason, c.message = "running", "", None
        c.container_id = f"containerd://{secrets.token_hex(32)}"
        c.started, c.started_at, c.finished_at = now, self.clock.timestamp(), None
        c.result = _commands.run(pod, c.spec, node, self.clock.now(), self.ctx.faults, self.ctx)
        if c.result.output:
            self._log(pod, c.name, c.result.output)
        if c.result.process is not None:
            self._spawn(pod, c, c.result.process)
        c.ready_at = None if c.init else now + self._readiness_delay(c.spec, c.result)
        c.exit_at = None if c.result.exit_code is None else now + c.result.duration
        due = [t for t in (c.ready_at, c.exit_at) if t is not None]
        if due:
            c.step, c.next_at = "run", min(due)
        else:
            c.step = "done"

    # ---- real processes ------------------------------------------------------------------------------
    def _spawn(self, pod: Obj, c: _Container, process: _realprocess.RealProcess) -> None:
        task = asyncio.create_task(self._run_process(dict(pod), c, process), name=f"kubelet:process:{c.name}")
        self.processes[(pod["metadata"]["uid"], c.name)] = task

    async def _run_process(self, pod: Obj, c: _Container, process: _realprocess.RealProcess) -> None:
        key = object_key(pod)
        code = 1
        with tempfile.TemporaryDirectory(prefix="aksai-sim-container-") as root:
            try:
                argv, env = _realprocess.prepare(process, pod, c.spec, self.store, Path(root))
                child = await asyncio.create_subprocess_exec(
                    *argv, env={**os.environ, **env}, cwd=root,
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)  # fmt: skip
            except OSError as exc:
                self._log(pod, c.name, f"exec {process.argv[0]}: {exc}\n")
            else:
                try:
                    assert child.stdout is not None
                    async for line in child.stdout:
                        self._log(pod, c.name, line.decode(errors="replace"))
                    code = await child.wait()
                finally:
                    if child.returncode is None:
                        child.kill()
                        await child.wait()
        self.processes.pop((pod["metadata"]["uid"], c.name), None)
        if c.result is not None and c.state == "running":
            c.result = dataclasses.replace(c.result, exit_code=code, process=None, duration=0.0)
            c.exit_at = c.next_at = self.clock.elapsed()
            c.step = "run"
            self.queue.add(key)

    def _kill_processes(self, uid: str) -> None:
        for (owner, _), task in list(self.processes.items()):
            if owner == uid:
                task.cancel()

    @staticmethod
    def _readiness_delay(spec: Mapping[str, Any], result: _commands.CommandResult) -> float:
        probes = [spec[p] for p in ("startupProbe", "readinessProbe") if spec.get(p)]
        if not probes:
            return 0.0
        delay = sum(float(p.get("initialDelaySeconds") or 0) + 1.0 for p in probes)
        if result.ready_after is not None and result.ready_after > delay:
            # the first probe (every periodSeconds) after the process is ready passes
            period = float(probes[-1].get("periodSeconds") or 10)
            delay += math.ceil((result.ready_after - delay) / period) * period
        return delay

    def _exit(self, pod: Obj, c: _Container, restart_policy: str, now: float) -> None:
        assert c.result is not None
        if c.exit_at is None or now < c.exit_at:
            # Only readiness was due.
            c.next_at = c.exit_at if c.exit_at is not None else now
            c.step = "run" if c.exit_at is not None else "done"
            return
        code = int(c.result.exit_code or 0)
        c.state, c.finished_at = "terminated", self.clock.timestamp()
        c.reason = c.result.reason or ("Completed" if code == 0 else "Error")
        restart = restart_policy == "Always" or (restart_policy == "OnFailure" and code != 0)
        if c.init and code == 0:
            c.step = "done"
            return
        if not restart:
            c.step = "done"
            return
        c.last_state = {"terminated": self._terminated(c)}
        # `kubectl logs --previous` reads the log of the instance that exited.
        self.ctx.pod_logs.rotate(pod["metadata"]["namespace"], pod["metadata"]["name"], c.name)
        c.restarts += 1
        c.state, c.reason = "waiting", "CrashLoopBackOff"
        c.message = (
            f"back-off {_backoff(c.restarts):.0f}s restarting failed container={c.name} "
            f"pod={pod['metadata']['name']}_{pod['metadata']['namespace']}({pod['metadata']['uid']})"
        )
        self.event(
            pod,
            "Warning",
            "BackOff",
            f"Back-off restarting failed container {c.name} in pod "
            f"{pod['metadata']['name']}_{pod['metadata']['namespace']}({pod['metadata']['uid']})",
            "kubelet",
            (pod.get("spec") or {}).get("nodeName", ""),
        )
        c.step, c.next_at = "restart", now + _backoff(c.restarts)

    def _finish_deletion(self, pod: Obj, run: _PodRun | None) -> float | None:
        now = self.clock.elapsed()
        key = object_key(pod)
        if run is not None and run.killing_at is None:
            self._kill_processes(run.uid)
            run.killing_at = now + TERMINATE_SECONDS
            for c in run.containers:
                if c.state == "running":
                    self.event(pod, "Normal", "Killing", f"Stopping container {c.name}", "kubelet", run.node)
            return TERMINATE_SECONDS
        if run is not None and run.killing_at is not None and now < run.killing_at:
            return run.killing_at - now
        self._forget(key)
        self.store.delete(
            self.rt("v1", "pods"),
            pod["metadata"]["name"],
            pod["metadata"]["namespace"],
            grace_period_seconds=0,
        )
        return None

    # ---- status --------------------------------------------------------------------------------------
    def _terminated(self, c: _Container) -> Obj:
        code = int(c.result.exit_code or 0) if c.result else 0
        reason = (c.result.reason if c.result else None) or ("Completed" if code == 0 else "Error")
        return {
            "exitCode": code,
            "reason": reason,
            "startedAt": c.started_at,
            "finishedAt": c.finished_at,
            "containerID": c.container_id,
        }

    def _container_status(self, c: _Container, now: float, listening: bool) -> Obj:
        ready = c.state == "running" and (c.ready_at is not None and now >= c.ready_at)
        if c.result is not None and c.result.serves_http:
            ready = ready and listening
        status: Obj = {
            "name": c.name,
            "image": c.image,
            "imageID": "",
            "ready": ready,
            "restartCount": c.restarts,
            "started": c.state == "running",
        }
        if c.state == "running":
            status["state"] = {"running": {"startedAt": c.started_at}}
        elif c.state == "terminated":
            status["state"] = {"terminated": self._terminated(c)}
        else:
            waiting: Obj = {"reason": c.reason}
            if c.message:
                waiting["message"] = c.message
            status["state"] = {"waiting": waiting}
        if c.container_id:
            status["containerID"] = c.container_id
            status["imageID"] = _image_ref(c.image)
        status["lastState"] = c.last_state
        return status

    def _write_status(self, pod: Obj, run: _PodRun) -> None:
        now = self.clock.elapsed()
        stamp = self.clock.timestamp()
        restart_policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
        inits = [c for c in run.containers if c.init]
        apps = [c for c in run.containers if not c.init]
        init_failed = any(c.state == "terminated" and c.result and c.result.exit_code != 0 for c in inits)
        initialized = all(c.state == "terminated" and c.result and c.result.exit_code == 0 for c in inits)
        listening = HTTP_PORT_ANNOTATION in (pod["metadata"].get("annotations") or {})
        statuses = [self._container_status(c, now, listening) for c in apps]
        init_statuses = [self._container_status(c, now, listening) for c in inits]
        if (
            initialized
            and any(c.state == "terminated" for c in apps)
            and all(c.state == "terminated" for c in apps)
        ):
            failed = any(c.result and c.result.exit_code != 0 for c in apps)
            phase = "Failed" if failed else "Succeeded"
        elif init_failed and restart_policy == "Never":
            phase = "Failed"
        elif (
            initialized
            and all(c.container_id for c in apps)
            and any(c.state == "running" or c.restarts for c in apps)
        ):
            phase = "Running"
        else:
            phase = "Pending"
        containers_ready = bool(apps) and all(s["ready"] for s in statuses)
        not_ready = [s["name"] for s in statuses if not s["ready"]]
        status = pod.setdefault("status", {})
        conditions: list[Obj] = status.setdefault("conditions", [])
        sandbox_ready = now >= run.created + SANDBOX_SECONDS
        set_condition(conditions, "PodReadyToStartContainers", "True" if sandbox_ready else "False", stamp)
        if initialized:
            set_condition(conditions, "Initialized", "True", stamp)
        else:
            pending = [
                c.name
                for c in inits
                if not (c.state == "terminated" and c.result and c.result.exit_code == 0)
            ]
            set_condition(
                conditions,
                "Initialized",
                "False",
                stamp,
                "ContainersNotInitialized",
                f"containers with incomplete status: [{' '.join(pending)}]",
            )
        if phase in ("Succeeded", "Failed"):
            reason, message = "PodCompleted", None
            set_condition(conditions, "Ready", "False", stamp, reason, message)
            set_condition(conditions, "ContainersReady", "False", stamp, reason, message)
        elif containers_ready:
            set_condition(conditions, "Ready", "True", stamp)
            set_condition(conditions, "ContainersReady", "True", stamp)
        else:
            message = f"containers with unready status: [{' '.join(not_ready)}]"
            set_condition(conditions, "Ready", "False", stamp, "ContainersNotReady", message)
            set_condition(conditions, "ContainersReady", "False", stamp, "ContainersNotReady", message)
        order = ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]
        conditions.sort(key=lambda cond: order.index(cond["type"]) if cond["type"] in order else len(order))
        status.update(
            {
                "phase": phase,
                "hostIP": run.host_ip,
                "hostIPs": [{"ip": run.host_ip}],
                "podIP": run.pod_ip,
                "podIPs": [{"ip": run.pod_ip}],
                "startTime": run.start_time,
                "containerStatuses": statuses,
            }
        )
        if init_statuses:
            status["initContainerStatuses"] = init_statuses
        self.store.update_status(self.rt("v1", "pods"), pod)

    def _log(self, pod: Obj, container: str, text: str) -> None:
        meta = pod["metadata"]
        self.ctx.pod_logs.append(meta["namespace"], meta["name"], container, text)


def _rfc3339(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def kubelet_of(ctx: Any) -> KubeletController | None:
    """The kubelet controller of a running simulated cluster (add-ons use it to end a container's process)."""
    return _KUBELETS.get(id(ctx))
