"""The vLLM processes of model pods: one simulated vLLM `ModelServer` per running inference container.

A pod runs vLLM when one of its containers runs KAITO's `inference_api.py` (`--model=<hf id>`). The
simulated container process (registered with the kubelet's command table) loads the model for
`load_seconds` of the preset, then serves; with the `kaito-inference-oom` fault it is killed with exit code
137 while loading. This controller plays the serving half: once a container has been running for its load
time, it starts a `ModelServer` on 127.0.0.1 with the model of the sizing catalog, the engine arguments of
the mounted inference ConfigMap and the GPUs of the node's instance type, and publishes its port in the pod
annotation `sim.aksai.dev/http-port`, which the API server's service and pod proxies use. A restart of the
container, the pod going away or the controller stopping stops the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pytest_aksai.sim._addons.kaito import _presets as presets
from pytest_aksai.sim._addons.vllm._server import EngineConfigError, GpuPerf, ModelServer, ServedModel
from pytest_aksai.sim._apiserver import HTTP_PORT_ANNOTATION
from pytest_aksai.sim._core import _commands, _kubelet, _usage
from pytest_aksai.sim._core._framework import Controller, Obj, Watch, object_key
from pytest_aksai.sim.contract import Fault
from pytest_aksai.sizing import UnknownEntryError, gpu_sku, vllm_engine_args

OOM_FAULT = Fault.KAITO_INFERENCE_OOM
ENGINE_DIES_AFTER = 12
ENGINE_DEAD_LOG = (
    "ERROR [core.py] EngineCore encountered a fatal error.\n"
    "ERROR [async_llm.py] AsyncLLM output_handler failed.\n"
    "vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue. See stack trace (above) for "
    "the root cause.\n"
    "INFO [launcher.py] Shutting down FastAPI HTTP server.\n"
)
log = logging.getLogger("pytest_aksai.sim.controllers")


def flag(argv: list[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
        if arg == f"--{name}" and i + 1 < len(argv):
            return argv[i + 1]
    return None


def vllm_serve_argv(argv: list[str]) -> list[str]:
    """`vllm serve <model> [flags]` (a vLLM Deployment without KAITO) as the inference_api.py argv."""
    if len(argv) >= 3 and argv[0].rsplit("/", 1)[-1] == "vllm" and argv[1] == "serve":
        return ["python3", presets.INFERENCE_API, f"--model={argv[2]}", *argv[3:]]
    return argv


def inference_argv(container: Mapping[str, Any]) -> list[str] | None:
    """The argv of inference_api.py when the container runs it (directly or through `sh -c`), or of
    `vllm serve`."""
    argv = vllm_serve_argv(_commands.argv_of(container))
    if len(argv) >= 3 and argv[0].rsplit("/", 1)[-1] in ("sh", "bash") and argv[1] == "-c":
        try:
            argv = shlex.split(argv[2])
        except ValueError:
            return None
    if (
        len(argv) >= 2
        and argv[0].rsplit("/", 1)[-1].startswith("python")
        and argv[1] == presets.INFERENCE_API
    ):
        return argv
    return None


def preset_of(argv: list[str]) -> presets.Preset | None:
    model = flag(argv, "model")
    return presets.preset_for_hf_id(model) if model else None


# ---- the simulated process (what the kubelet runs) -------------------------------------------------------
class _Process:
    """`python3 inference_api.py …`: parses its command line as vLLM's argument parser does (an unknown flag
    or a bad value exits 2 with argparse's message), loads for the preset's load time, then serves until the
    pod goes away."""

    def __init__(self) -> None:
        self.clusters: list[Any] = []
        """The contexts of the running simulated clusters (several can run in one process)."""

    def _ctx_of(self, pod: Mapping[str, Any]) -> Any:
        meta = pod.get("metadata") or {}
        for ctx in self.clusters:
            stored = ctx.store.try_get(
                ctx.store.resource("v1", "pods"), meta.get("name", ""), meta.get("namespace")
            )
            if stored is not None and stored["metadata"].get("uid") == meta.get("uid"):
                return ctx
        return None

    def __call__(self, cmd: _commands.CommandContext) -> _commands.CommandResult:
        argv = vllm_serve_argv(list(cmd.argv))
        if len(argv) < 2 or argv[1] != presets.INFERENCE_API:
            return _commands.LONG_RUNNING
        ctx = self._ctx_of(cmd.pod)
        vllm = _mounted_config(ctx, cmd.pod, cmd.container)
        refused = _refused_arguments(argv, vllm) or _unsupported_dtype(cmd.node, vllm)
        if refused is not None:
            return refused
        entry = preset_of(argv)
        if entry is None:
            model = flag(argv, "model")
            return _commands.CommandResult(
                f"ValueError: model {model!r} is not a KAITO preset the simulated cluster knows\n", 1, 5.0
            )
        load = presets.load_seconds(entry)
        out = (
            f"INFO {cmd.now:%m-%d %H:%M:%S} [api_server.py] vLLM API server version (simulated)\n"
            f"INFO {cmd.now:%m-%d %H:%M:%S} [inference_api.py] downloading {entry.hf_id} "
            f"({entry.weights_bytes / 1e9:.2f} GB) from Hugging Face\n"
        )
        if ctx is not None and ctx.faults.is_active(OOM_FAULT):
            return _commands.CommandResult(
                out + "Killed\n", 137, load * presets.OOM_AFTER_FRACTION, reason="OOMKilled", serves_http=True
            )
        return _commands.CommandResult(out, None, 0.0, ready_after=load, serves_http=True)


ARGPARSE_SECONDS = 4.0
"""Cluster seconds from start until vLLM's parser refuses its command line (Python imports torch first)."""


def _mounted_config(ctx: Any, pod: Mapping[str, Any], container: Mapping[str, Any]) -> dict[str, Any]:
    """The `vllm:` map of the inference ConfigMap mounted at KAITO's config path ({} when none or unreadable)."""
    if ctx is None:
        return {}
    mounts = {m.get("name"): m.get("mountPath") for m in container.get("volumeMounts") or []}
    namespace = (pod.get("metadata") or {}).get("namespace")
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        cm_name = (volume.get("configMap") or {}).get("name")
        if cm_name and mounts.get(volume.get("name")) == presets.CONFIG_MOUNT_PATH:
            cm = ctx.store.try_get(ctx.store.resource("v1", "configmaps"), cm_name, namespace)
            try:
                return presets.parse_inference_config(cm, cm_name, str(namespace))
            except presets.InferenceConfigError:
                return {}
    return {}


def _refused_arguments(argv: list[str], vllm: Mapping[str, Any]) -> _commands.CommandResult | None:
    """What vLLM's parser does with KAITO's flags plus the config's `--<key> <value>` pairs: None if it
    accepts them, else the process's exit (2 for argparse errors with usage and message, 1 for a value its
    config classes refuse)."""
    catalog = vllm_engine_args()
    flags = {k: v for k, v in _argv_flags(argv[2:]).items() if not k.startswith("kaito-")}
    # KAITO appends the config's pairs after its own flags; argparse keeps the last value of a flag.
    problems = catalog.check({**flags, **vllm})
    if not problems:
        return None
    first = problems[0]
    if first.problem == "range":
        text = f"Traceback (most recent call last):\n  ...\nValueError: {first.message}\n"
        return _commands.CommandResult(text, 1, ARGPARSE_SECONDS)
    text = (
        "usage: inference_api.py [-h] [--model MODEL] [--served-model-name SERVED_MODEL_NAME ...] ...\n"
        f"inference_api.py: error: {first.message}\n"
    )
    return _commands.CommandResult(text, 2, ARGPARSE_SECONDS)


ENGINE_INIT_SECONDS = 20.0
"""Cluster seconds from start until vLLM's engine checks the GPU (after imports and the model config)."""


def _unsupported_dtype(node: Mapping[str, Any], vllm: Mapping[str, Any]) -> _commands.CommandResult | None:
    """vLLM refuses an explicit `dtype: bfloat16` on a GPU below compute capability 8.0 (T4, V100)."""
    if str(vllm.get("dtype", "")).lower() not in ("bfloat16", "bf16"):
        return None
    instance_type = ((node.get("metadata") or {}).get("labels") or {}).get(
        "node.kubernetes.io/instance-type", ""
    )
    try:
        sku = gpu_sku(instance_type)
    except UnknownEntryError:
        return None
    if sku.bf16:
        return None
    text = (
        "Traceback (most recent call last):\n  ...\nValueError: Bfloat16 is only supported on GPUs with compute "
        f"capability of at least 8.0. Your {sku.gpu_model} GPU has compute capability {sku.compute_capability:g}. "
        "You can use float16 instead by explicitly setting the `dtype` flag in CLI, for example: --dtype=half.\n"
    )
    return _commands.CommandResult(text, 1, ENGINE_INIT_SECONDS)


def _argv_flags(args: list[str]) -> dict[str, str]:
    """`--key=value`, `--key value` and bare `--switch` arguments as a map (switches map to "true")."""
    out: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--"):
            key, sep, value = arg[2:].partition("=")
            if not sep:
                if i + 1 < len(args) and not args[i + 1].startswith("--"):
                    value, i = args[i + 1], i + 1
                else:
                    value = "true"
            out[key] = value
        i += 1
    return out


_PROCESS = _Process()
_commands.register_command("python3", _PROCESS)
_commands.register_command("python", _PROCESS)
_commands.register_command("vllm", _PROCESS)
_kubelet.register_pull_time("mcr.microsoft.com/aks/kaito/kaito-base", presets.BASE_IMAGE_PULL_SECONDS)


# ---- the controller --------------------------------------------------------------------------------------
@dataclass
class _Running:
    uid: str
    container: str
    started_at: str
    server: ModelServer | None


def _parse_time(stamp: str) -> datetime:
    return datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)


def _is_inference_pod(_self: Any, _event_type: str, pod: Obj) -> list[str]:
    containers = (pod.get("spec") or {}).get("containers") or []
    return [object_key(pod)] if any(inference_argv(c) for c in containers) else []


class ModelServingController(Controller):
    name = "model-serving"
    watches = (Watch("v1", "pods", _is_inference_pod),)

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.servers: dict[str, _Running] = {}
        _PROCESS.clusters.append(ctx)
        _usage.register_usage(ctx.store, self.container_usage)

    def container_usage(
        self, pod: Mapping[str, Any], container: Mapping[str, Any], _now: float
    ) -> _usage.Usage | None:
        """What metrics-server sees of a vLLM container: ~2.5 GiB of host memory once loaded and a few percent
        of a core idle; under load the API server and engine-core processes take up to ~1.5 cores."""
        running = self.servers.get(object_key(pod))
        if running is None or running.server is None or running.container != container.get("name"):
            return None
        engine = running.server.engine
        load = min(1.0, engine.in_engine() / max(engine.config.max_num_seqs, 1))
        cpu = 0.06 + (0.6 + 0.9 * load if engine.in_engine() else 0.0)
        return _usage.Usage(cpu, int((2560 + 48 * len(engine.running)) * _usage.MIB))

    def start(self) -> list[asyncio.Task[None]]:
        tasks = super().start()
        tasks.append(asyncio.create_task(self._stop_all_on_cancel(), name=f"{self.name}:servers"))
        return tasks

    async def _stop_all_on_cancel(self) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            if self.ctx in _PROCESS.clusters:
                _PROCESS.clusters.remove(self.ctx)
            for key in list(self.servers):
                await self._stop(key)

    async def _stop(self, key: str) -> None:
        running = self.servers.pop(key, None)
        if running is not None and running.server is not None:
            with contextlib.suppress(Exception):
                await running.server.stop()

    async def reconcile(self, key: str) -> float | None:
        pod = self.get("v1", "pods", key)
        running = self.servers.get(key)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            await self._stop(key)
            return None
        container, argv = next(
            ((c, a) for c in pod["spec"].get("containers") or [] if (a := inference_argv(c)) is not None),
            (None, None),
        )
        if container is None or argv is None:
            await self._stop(key)
            return None
        cstatus: Obj = next(
            (
                s
                for s in (pod.get("status") or {}).get("containerStatuses") or []
                if s.get("name") == container["name"]
            ),
            {},
        )
        started_at = ((cstatus.get("state") or {}).get("running") or {}).get("startedAt")
        if running is not None and (
            running.uid != pod["metadata"]["uid"] or running.started_at != started_at
        ):
            await self._stop(key)
            running = None
            self._set_port(pod, None)
        if not started_at:
            return None
        entry = preset_of(argv)
        if entry is None:
            return None
        if running is not None:
            return None
        due = (_parse_time(started_at) - self.clock.now()).total_seconds() + presets.load_seconds(entry)
        if due > 0:
            return due
        server = self._build_server(pod, container, argv, entry)
        self.servers[key] = _Running(pod["metadata"]["uid"], container["name"], started_at, server)
        if server is None:
            return None
        self._arm_engine_death(key, server, container["name"])
        port = await server.start()
        self._set_port(pod, port)
        self.event(
            pod,
            "Normal",
            "ModelServing",
            f"vLLM serves {entry.served_name} on :{presets.INFERENCE_PORT} (simulated at 127.0.0.1:{port})",
            "aksai-sim",
        )
        return None

    def _arm_engine_death(self, key: str, server: ModelServer, container: str) -> None:
        """With `vllm-engine-dies=N`: after N completions the engine core dies as vLLM's does (in-flight
        requests fail, /health answers 503) and the API server process exits 1, so the kubelet restarts it."""
        if not self.ctx.faults.is_active(Fault.VLLM_ENGINE_DIES):
            return
        raw = self.ctx.faults.parameter(Fault.VLLM_ENGINE_DIES)
        limit = int(raw) if raw.strip().isdigit() else ENGINE_DIES_AFTER
        served = [0]

        async def count(request: Any, _response: Any) -> None:
            if request.path not in ("/v1/completions", "/v1/chat/completions"):
                return
            served[0] += 1
            if served[0] == limit:
                asyncio.get_running_loop().call_later(0.05, self._engine_died, key, server, container)

        server.app.on_response_prepare.append(count)

    def _engine_died(self, key: str, server: ModelServer, container: str) -> None:
        server.mark_dead()
        namespace, name = key.split("/", 1)
        kubelet = _kubelet.kubelet_of(self.ctx)
        if kubelet is not None:
            kubelet.crash(namespace, name, container, exit_code=1, output=ENGINE_DEAD_LOG)

    def _build_server(
        self, pod: Obj, container: Obj, argv: list[str], entry: presets.Preset
    ) -> ModelServer | None:
        node_name = (pod.get("spec") or {}).get("nodeName") or ""
        node = self.get("v1", "nodes", node_name) or {}
        instance_type = ((node.get("metadata") or {}).get("labels") or {}).get(
            "node.kubernetes.io/instance-type", ""
        )
        try:
            sku = gpu_sku(instance_type)
        except UnknownEntryError:
            self._log(
                pod, container, f"RuntimeError: no GPU found on node {node_name!r} ({instance_type!r})\n"
            )
            return None
        vllm = self._vllm_map(pod, container)
        # KAITO appends the config's `--served-model-name` after its own; argparse keeps the last one.
        served = str(
            vllm.get("served-model-name")
            or vllm.get("served_model_name")
            or flag(argv, "served-model-name")
            or entry.served_name
        )
        model = dataclasses.replace(presets.served_model(entry), served_name=served)
        try:
            return self._server(model, vllm, entry, presets.gpu_perf(sku))
        except (EngineConfigError, presets.InferenceConfigError) as exc:
            # vLLM's engine refuses to start: the process exits 1 with the traceback, and crash-loops.
            kubelet = _kubelet.kubelet_of(self.ctx)
            text = f"Traceback (most recent call last):\n  ...\nValueError: {exc}\n"
            meta = pod["metadata"]
            if kubelet is None or not kubelet.crash(
                meta["namespace"], meta["name"], container["name"], exit_code=1, output=text
            ):
                self._log(pod, container, text)
            return None

    def _server(
        self, model: ServedModel, vllm: Mapping[str, Any], entry: presets.Preset, gpu: GpuPerf
    ) -> ModelServer:
        """Explicit engine arguments as given; without `max-model-len`, KAITO's `auto`: the largest that fits."""
        explicit = "max-model-len" in vllm or "max_model_len" in vllm
        length = entry.token_limit
        while True:
            args = dict(vllm) if explicit else {**vllm, "max-model-len": length}
            try:
                return ModelServer(
                    model,
                    presets.engine_config(args, entry),
                    gpu,
                    self.ctx.faults,
                    legacy_metrics=self.ctx.faults.is_active(Fault.VLLM_LEGACY_METRICS),
                )
            except (EngineConfigError, presets.InferenceConfigError):
                if explicit or length <= 256:
                    raise
                length //= 2

    def _vllm_map(self, pod: Obj, container: Obj) -> dict[str, Any]:
        mounts = {m.get("name"): m.get("mountPath") for m in container.get("volumeMounts") or []}
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            cm_name = (volume.get("configMap") or {}).get("name")
            if cm_name and mounts.get(volume.get("name")) == presets.CONFIG_MOUNT_PATH:
                cm = self.get("v1", "configmaps", f"{pod['metadata']['namespace']}/{cm_name}")
                try:
                    return presets.parse_inference_config(cm, cm_name, pod["metadata"]["namespace"])
                except presets.InferenceConfigError as exc:
                    self._log(pod, container, f"WARNING: {exc}; using the preset's defaults\n")
        return {}

    def _set_port(self, pod: Obj, port: int | None) -> None:
        annotations = pod["metadata"].get("annotations") or {}
        if port is None and HTTP_PORT_ANNOTATION not in annotations:
            return
        value = None if port is None else str(port)
        with contextlib.suppress(Exception):
            self.store.patch(
                self.rt("v1", "pods"),
                pod["metadata"]["name"],
                {"metadata": {"annotations": {HTTP_PORT_ANNOTATION: value}}},
                "merge",
                namespace=pod["metadata"]["namespace"],
            )

    def _log(self, pod: Obj, container: Obj, text: str) -> None:
        logs = getattr(self.ctx, "pod_logs", None)
        if logs is not None:
            meta = pod["metadata"]
            logs.append(meta["namespace"], meta["name"], container["name"], text)
