"""Simulated container commands: what a container "runs", its output and its exit code.

A container's command (`command` + `args`, or the image's registered entrypoint) is looked up by the
basename of its first word. A handler returns the output, the exit code and how long the process runs in
cluster seconds; `exit_code=None` means it runs until the pod is deleted. Unknown commands and images
without a registered entrypoint run as long-lived processes, as most server images do.

Extend with `register_command("name", handler)` or `register_image("image-substring", handler)`.
"""

from __future__ import annotations

import dataclasses
import shlex
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pytest_aksai.sim._core._resources import GPU_RESOURCE, parse_map
from pytest_aksai.sim._scenarios._vmsizes import GPU_MODELS, VM_SIZES, GpuModel

if TYPE_CHECKING:
    from pytest_aksai.sim._core._realprocess import RealProcess

DEFAULT_DRIVER_VERSION = "550.144.03"
DEFAULT_CUDA_VERSION = "12.4"


@dataclass(frozen=True)
class CommandContext:
    argv: list[str]
    pod: Mapping[str, Any]
    container: Mapping[str, Any]
    node: Mapping[str, Any]
    now: datetime
    faults: Any = None
    """The cluster's ActiveFaults (None outside a running cluster)."""
    cluster: Any = None
    """The running cluster's context (its store), for commands that look at the cluster (`curl`)."""


@dataclass(frozen=True)
class CommandResult:
    output: str = ""
    exit_code: int | None = 0
    """None: the process keeps running until the pod goes away."""
    duration: float = 1.0
    """Cluster seconds from start to exit."""
    ready_after: float | None = None
    """Cluster seconds from start until the process answers its readiness/startup probe (e.g. a model server
    loading weights); None: as soon as the probes' initialDelaySeconds allow. Containers without probes are
    Ready when started, as on a real kubelet."""
    reason: str | None = None
    """Termination reason instead of Completed/Error (e.g. OOMKilled)."""
    serves_http: bool = False
    """The process answers its HTTP readiness probe only once it listens, which the pod's
    `sim.aksai.dev/http-port` annotation announces: until then the container is not Ready."""
    process: RealProcess | None = None
    """Run this real process on the machine (see `_realprocess`): its exit ends the container."""


Handler = Callable[[CommandContext], CommandResult]

_COMMANDS: dict[str, Handler] = {}
_IMAGES: list[tuple[str, Handler]] = []

LONG_RUNNING = CommandResult(exit_code=None)


def register_command(name: str, handler: Handler) -> None:
    _COMMANDS[name] = handler


def lookup(name: str) -> Handler | None:
    """The handler registered for program `name` (a basename), if any."""
    return _COMMANDS.get(name)


def register_image(image_substring: str, handler: Handler) -> None:
    """Entrypoint for containers of images containing `image_substring` that set no `command`."""
    _IMAGES.append((image_substring, handler))


def argv_of(container: Mapping[str, Any]) -> list[str]:
    return [str(a) for a in (container.get("command") or [])] + [
        str(a) for a in (container.get("args") or [])
    ]


def run(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    node: Mapping[str, Any],
    now: datetime,
    faults: Any = None,
    cluster: Any = None,
) -> CommandResult:
    argv = argv_of(container)
    ctx = CommandContext(argv, pod, container, node, now, faults, cluster)
    if not container.get("command"):
        image = str(container.get("image") or "")
        for substring, handler in reversed(_IMAGES):
            if substring in image:
                return handler(ctx)
        if not argv:
            return LONG_RUNNING
    return _dispatch(ctx)


def _dispatch(ctx: CommandContext) -> CommandResult:
    if not ctx.argv:
        return LONG_RUNNING
    handler = _COMMANDS.get(ctx.argv[0].rsplit("/", 1)[-1])
    return handler(ctx) if handler else LONG_RUNNING


def _with_argv(ctx: CommandContext, argv: list[str]) -> CommandContext:
    return CommandContext(argv, ctx.pod, ctx.container, ctx.node, ctx.now, ctx.faults, ctx.cluster)


def _shell(ctx: CommandContext) -> CommandResult:
    """`sh -c 'a && b; c'`: runs the simple commands in order; `&&` stops at the first failure."""
    if len(ctx.argv) < 3 or ctx.argv[1] != "-c":
        return LONG_RUNNING
    lexer = shlex.shlex(ctx.argv[2], posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    output: list[str] = []
    duration = 0.0
    exit_code: int | None = 0
    words: list[str] = []
    skipping = False
    last: CommandResult | None = None
    for token in [*lexer, ";"]:
        if token not in (";", "&&"):
            words.append(token)
            continue
        if words and not skipping:
            if words[0] == "exit":
                return CommandResult(
                    "".join(output), int(words[1]) if len(words) > 1 else exit_code, duration
                )
            result = _dispatch(_with_argv(ctx, words))
            output.append(result.output)
            started = duration
            duration += result.duration
            exit_code = result.exit_code
            last = result
            if exit_code is None:
                # The shell becomes the long-running process: its readiness is that process's.
                ready_after = None if result.ready_after is None else started + result.ready_after
                return dataclasses.replace(
                    result, output="".join(output), duration=duration, ready_after=ready_after
                )
        words = []
        skipping = token == "&&" and (skipping or exit_code != 0)
    if last is None:
        return CommandResult("".join(output), exit_code, duration)
    return dataclasses.replace(last, output="".join(output), exit_code=exit_code, duration=duration)


def _echo(ctx: CommandContext) -> CommandResult:
    return CommandResult(" ".join(ctx.argv[1:]) + "\n", 0, 0.1)


def _sleep(ctx: CommandContext) -> CommandResult:
    try:
        seconds = float(ctx.argv[1]) if len(ctx.argv) > 1 else 0.0
    except ValueError:
        return CommandResult(f"sleep: invalid time interval '{ctx.argv[1]}'\n", 1, 0.1)
    return CommandResult("", 0, seconds)


def _gpu_model(labels: Mapping[str, str]) -> GpuModel | None:
    product = labels.get("nvidia.com/gpu.product", "")
    for model in GPU_MODELS.values():
        if product and product == model.product_label:
            return model
    sku_gpu = labels.get("karpenter.azure.com/sku-gpu-name", "")
    if sku_gpu in GPU_MODELS:
        return GPU_MODELS[sku_gpu]
    size = VM_SIZES.get(labels.get("node.kubernetes.io/instance-type", ""))
    if size is not None and size.gpu is not None:
        return size.gpu
    if product:
        return GpuModel(product, product.replace("-", " "), product, 16384, 300)
    return None


def _label_version(labels: Mapping[str, str], prefix: str, full_key: str, default: str, parts: int) -> str:
    if labels.get(full_key):
        return labels[full_key]
    pieces = [labels.get(f"{prefix}.{p}") for p in ("major", "minor", "rev")[:parts]]
    return ".".join(p for p in pieces if p) if pieces[0] and pieces[1] else default


def _row(cells: list[tuple[str, str]], widths: tuple[int, ...]) -> str:
    return (
        "|"
        + "|".join(left.ljust(w - len(right)) + right for (left, right), w in zip(cells, widths, strict=True))
        + "|"
    )


def nvidia_smi_table(model: GpuModel, count: int, driver: str, cuda: str, now: datetime) -> str:
    widths = (41, 24, 22)
    line = "+" + "+".join("-" * w for w in widths) + "+"
    full = "+" + "-" * 89 + "+"
    out = [
        now.strftime("%a %b %d %H:%M:%S %Y") + "       ",
        full,
        "| " + f"NVIDIA-SMI {driver:<23}Driver Version: {driver:<15}CUDA Version: {cuda:<9}".ljust(88) + "|",
        "|" + "+".join("-" * w for w in widths) + "+",
        _row(
            [(" GPU  Name", "Persistence-M "), (" Bus-Id", "Disp.A "), ("", "Volatile Uncorr. ECC ")], widths
        ),
        _row(
            [(" Fan  Temp   Perf", "Pwr:Usage/Cap "), ("", "Memory-Usage "), (" GPU-Util", "Compute M. ")],
            widths,
        ),
        _row([("", ""), ("", ""), ("", "MIG M. ")], widths),
        "|" + "+".join("=" * w for w in widths) + "|",
    ]
    for index in range(count):
        out += [
            _row(
                [
                    (f" {index:>3}  {model.smi_name}", "On  "),
                    (f"   0000000{index + 1}:00:00.0", "Off "),
                    ("", "Off "),
                ],
                widths,
            ),
            _row(
                [
                    (" N/A   32C    P8", f"{9:>3}W / {model.power_cap_w:>4}W "),
                    ("", f"1MiB / {model.memory_mib:>6}MiB "),
                    ("      0%", "Default "),
                ],
                widths,
            ),
            _row([("", ""), ("", ""), ("", "N/A ")], widths),
            line,
        ]
    out += [
        " " * 91,
        full,
        "| " + "Processes:".ljust(88) + "|",
        "| "
        + " GPU   GI   CI        PID   Type   Process name                              GPU Memory".ljust(88)
        + "|",
        "| "
        + "       ID   ID                                                               Usage".ljust(88)
        + "|",
        "|" + "=" * 89 + "|",
        "| " + " No running processes found".ljust(88) + "|",
        full,
    ]
    return "\n".join(out) + "\n"


def _allocated_gpus(ctx: CommandContext) -> int:
    resources = ctx.container.get("resources") or {}
    value = parse_map(resources.get("limits")).get(GPU_RESOURCE) or parse_map(resources.get("requests")).get(
        GPU_RESOURCE
    )
    return int(value or Decimal(0))


def _nvidia_smi(ctx: CommandContext) -> CommandResult:
    labels = (ctx.node.get("metadata") or {}).get("labels") or {}
    model = _gpu_model(labels)
    if model is None:
        return CommandResult(
            "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
            "Make sure that the latest NVIDIA driver is installed and running.\n\n",
            9,
            0.5,
        )
    count = _allocated_gpus(ctx)
    if count == 0:
        return CommandResult("No devices were found\n", 6, 0.5)
    driver = _label_version(
        labels, "nvidia.com/cuda.driver", "nvidia.com/cuda.driver-version.full", DEFAULT_DRIVER_VERSION, 3
    )
    cuda = _label_version(
        labels, "nvidia.com/cuda.runtime", "nvidia.com/cuda.runtime-version.full", DEFAULT_CUDA_VERSION, 2
    )
    args = ctx.argv[1:]
    if "-L" in args or "--list-gpus" in args:
        text = "".join(f"GPU {i}: {model.smi_name} (UUID: GPU-{_uuid(ctx, i)})\n" for i in range(count))
        return CommandResult(text, 0, 0.5)
    query = next((a.split("=", 1)[1] for a in args if a.startswith("--query-gpu=")), None)
    if query is not None:
        values = {
            "name": model.smi_name,
            "memory.total": f"{model.memory_mib} MiB",
            "driver_version": driver,
            "count": str(count),
        }
        fields = [f.strip() for f in query.split(",")]
        unknown = [f for f in fields if f not in values]
        if unknown:
            return CommandResult(f'Field "{unknown[0]}" is not a valid field to query.\n\n', 2, 0.5)
        return CommandResult(
            "".join(", ".join(values[f] for f in fields) + "\n" for _ in range(count)), 0, 0.5
        )
    return CommandResult(nvidia_smi_table(model, count, driver, cuda, ctx.now), 0, 0.5)


def _uuid(ctx: CommandContext, index: int) -> str:
    node_name = (ctx.node.get("metadata") or {}).get("name", "")
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{node_name}/gpu{index}"))


for _name, _handler in {
    "nvidia-smi": _nvidia_smi,
    "echo": _echo,
    "sleep": _sleep,
    "true": lambda ctx: CommandResult("", 0, 0.1),
    "false": lambda ctx: CommandResult("", 1, 0.1),
    "sh": _shell,
    "bash": _shell,
}.items():
    register_command(_name, _handler)
