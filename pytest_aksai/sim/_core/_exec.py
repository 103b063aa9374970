"""The container runtime's exec, attach and port-forward, as `kubectl exec|attach|cp|port-forward` reach them.

`kubectl exec <pod> -- <argv>` runs `argv` in the simulated container: the commands below (coreutils-like
tools, `env`, `cat`, `ls`, `tar` for `kubectl cp`, `curl` to in-cluster addresses, `sh -c` with pipes,
`&&`/`||`, redirections and variables) and every command the kubelet's command table knows
(`nvidia-smi`, the model servers' entrypoints…). An argv whose program exists nowhere fails to start the
way containerd reports a missing binary; inside `sh -c` it is the shell's `not found` with exit code 127.

The API server reaches this through `Store.container_runtime` (set by `install`).
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import posixpath
import re
import secrets
import tarfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from io import BytesIO
from typing import Any, Protocol

from pytest_aksai.sim._apiserver._streams import ExecStartError
from pytest_aksai.sim._core import _commands
from pytest_aksai.sim._core._container_fs import ContainerFiles, ContainerView
from pytest_aksai.sim._core._net import HttpExchange, resolve_address
from pytest_aksai.sim._core._shell import ShellExit, run_script
from pytest_aksai.sim._core._webserver import DefaultWebServer, serves_default_page
from pytest_aksai.sim.contract import HTTP_PORT_ANNOTATION

Obj = dict[str, Any]


class ExecStreams(Protocol):
    """The client's side of an exec or attach, whatever the wire protocol."""

    tty: bool
    has_stdin: bool

    async def read_stdin(self) -> bytes:
        """The next chunk of stdin; b"" once the client closed it (or sent none)."""

    async def write_stdout(self, data: bytes) -> None: ...

    async def write_stderr(self, data: bytes) -> None: ...


class _Input:
    """A process's stdin: the client's stream, a pipe's buffered output, or nothing."""

    def __init__(self, streams: ExecStreams | None = None, data: bytes = b"") -> None:
        self._streams = streams if streams is not None and streams.has_stdin else None
        self._buffer = bytearray(data)  # appended in place: `kubectl cp` streams megabytes
        self._eof = self._streams is None

    async def _fill(self) -> bool:
        if self._eof or self._streams is None:
            return False
        chunk = await self._streams.read_stdin()
        if not chunk:
            self._eof = True
            return False
        self._buffer += chunk
        return True

    def _take(self, size: int | None = None) -> bytes:
        end = len(self._buffer) if size is None else size
        data = bytes(self._buffer[:end])
        del self._buffer[:end]
        return data

    async def read_chunk(self) -> bytes:
        """What is there now (waiting for the next chunk if nothing is); b"" at the end."""
        if not self._buffer:
            await self._fill()
        return self._take()

    async def read_all(self) -> bytes:
        while await self._fill():
            pass
        return self._take()

    async def readline(self) -> bytes:
        while b"\n" not in self._buffer and await self._fill():
            pass
        end = self._buffer.find(b"\n")
        return self._take(None if end < 0 else end + 1)


Writer = Callable[[bytes], Awaitable[None]]


@dataclass
class _Proc:
    argv: list[str]
    env: dict[str, str]
    stdin: _Input
    out: Writer
    err: Writer
    view: ContainerView
    runtime: ContainerRuntime
    shell: _ShellState

    async def say(self, text: str) -> None:
        await self.out(text.encode())

    async def complain(self, text: str) -> None:
        await self.err(text.encode())

    def path(self, name: str) -> str:
        return posixpath.normpath(posixpath.join(self.shell.cwd, name))

    def spawn(self, argv: list[str], env: dict[str, str], stdin: Any, out: Writer, err: Writer) -> _Proc:
        return _Proc(argv, env, stdin, out, err, self.view, self.runtime, self.shell)

    async def run(self) -> int:
        return await self.runtime.run(self)

    def read_file(self, path: str) -> bytes | None:
        return self.view.read(path)

    def write_file(self, path: str, data: bytes) -> None:
        self.view.write(path, data)

    def input_of(self, data: bytes) -> _Input:
        return _Input(data=data)


@dataclass
class _ShellState:
    cwd: str = "/"
    last_status: int = 0
    name: str = "sh"


Command = Callable[[_Proc], Awaitable[int]]
_BUILTIN: dict[str, Command] = {}


def _command(*names: str) -> Callable[[Command], Command]:
    def register(fn: Command) -> Command:
        for name in names:
            _BUILTIN[name] = fn
        return fn

    return register


# ---- the runtime -------------------------------------------------------------------------------------
class ContainerRuntime:
    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self._files: dict[tuple[str, str], ContainerFiles] = {}
        self.web = DefaultWebServer()

    def _view(self, pod: Obj, container: Obj) -> ContainerView:
        key = (str(pod["metadata"].get("uid")), str(container.get("name")))
        if len(self._files) > 256:
            live = {
                str(p["metadata"].get("uid"))
                for p in self.store.list_page(self.store.resource("v1", "pods"), None).items
            }
            self._files = {k: v for k, v in self._files.items() if k[0] in live}
        from pytest_aksai.sim._core._kubelet import kubelet_of

        files = self._files.setdefault(key, ContainerFiles())
        return ContainerView(self.store, pod, container, files, kubelet_of(self.ctx))

    def _node(self, pod: Obj) -> Obj:
        name = (pod.get("spec") or {}).get("nodeName") or ""
        node: Obj | None = self.store.try_get(self.store.resource("v1", "nodes"), name)
        return node or {"metadata": {"name": name}}

    async def exec(self, pod: Obj, container: Obj, argv: list[str], streams: ExecStreams) -> int:
        """Runs `argv` in the container; returns its exit code, raises ExecStartError if it cannot start."""
        view = self._view(pod, container)
        if not argv:
            raise ExecStartError(_start_failure("", "exec: no command"))
        program = argv[0].rsplit("/", 1)[-1]
        if self._lookup(program, container) is None:
            raise ExecStartError(
                _start_failure(
                    argv[0],
                    f'exec: "{argv[0]}": executable file not found in $PATH'
                    if "/" not in argv[0]
                    else f'exec: "{argv[0]}": stat {argv[0]}: no such file or directory',
                )
            )
        proc = _Proc(
            list(argv),
            view.environment(),
            _Input(streams),
            streams.write_stdout,
            streams.write_stderr,
            view,
            self,
            _ShellState(cwd=str(container.get("workingDir") or "/")),
        )
        return await self.run(proc)

    def _lookup(self, program: str, container: Obj) -> Command | None:
        if program in _BUILTIN:
            return _BUILTIN[program]
        handler = _commands.lookup(program)
        own = _commands.argv_of(container)
        if handler is None and not (own and own[0].rsplit("/", 1)[-1] == program):
            return None
        return self._entrypoint

    async def run(self, proc: _Proc) -> int:
        command = self._lookup(proc.argv[0].rsplit("/", 1)[-1], proc.view.container)
        if command is None:
            await proc.complain(f"{proc.shell.name}: 1: {proc.argv[0]}: not found\n")
            return 127
        return await command(proc)

    async def _entrypoint(self, proc: _Proc) -> int:
        """A program of the kubelet's command table (or the container's own): its output and exit code."""
        spec = {**proc.view.container, "command": proc.argv, "args": []}
        result = _commands.run(
            proc.view.pod, spec, self._node(proc.view.pod), self.ctx.clock.now(), self.ctx.faults
        )
        if result.output:
            await proc.say(result.output)
        if result.exit_code is None:
            await asyncio.Event().wait()  # a server process: runs until the client goes away
        await self.ctx.clock.sleep(min(result.duration, 5.0))
        return int(result.exit_code or 0)

    async def attach(self, pod: Obj, container: Obj, streams: ExecStreams) -> int:
        """Streams what the container's process writes from now on, until the pod goes away."""
        meta = pod["metadata"]
        namespace, name, cname = meta["namespace"], meta["name"], str(container["name"])
        logs = self.ctx.pod_logs
        sent = len(logs.read(namespace, name, cname) or "")
        pods = self.store.resource("v1", "pods")
        while (current := self.store.try_get(pods, name, namespace)) is not None and current["metadata"].get(
            "uid"
        ) == meta.get("uid"):
            await logs.wait(namespace, name, 1.0)
            text = logs.read(namespace, name, cname) or ""
            if len(text) > sent:
                await streams.write_stdout(text[sent:].encode())
                sent = len(text)
        return 0

    def listening_port(self, pod: Obj, port: int) -> int | None:
        """The local port of the pod's process that answers `port` of the pod's network namespace."""
        target = (pod["metadata"].get("annotations") or {}).get(HTTP_PORT_ANNOTATION)
        if not target:
            running = {
                s.get("name")
                for s in (pod.get("status") or {}).get("containerStatuses") or []
                if "running" in (s.get("state") or {})
            }
            for container in (pod.get("spec") or {}).get("containers") or []:
                if container.get("name") in running and serves_default_page(container, port):
                    return self.web.port
            return None
        declared = {
            int(p["containerPort"])
            for c in (pod.get("spec") or {}).get("containers") or []
            for p in c.get("ports") or []
            if str(p.get("containerPort", "")).isdigit()
        }
        return int(target) if not declared or port in declared else None


def _start_failure(argv0: str, detail: str) -> str:
    exec_id = secrets.token_hex(32)
    return (
        f'failed to exec in container: failed to start exec "{exec_id}": OCI runtime exec failed: '
        f"exec failed: unable to start container process: {detail}: unknown"
    )


def install(ctx: Any) -> tuple[ContainerRuntime, asyncio.Task[None]]:
    """The runtime, registered where the API server finds it, and the task of its default web server."""
    runtime = ContainerRuntime(ctx)
    ctx.store.container_runtime = runtime
    return runtime, asyncio.create_task(runtime.web.serve(), name="aksai-sim-default-web")


# ---- builtins and tools ------------------------------------------------------------------------------
@_command("sh", "bash", "ash", "dash")
async def _sh(proc: _Proc) -> int:
    shell = _ShellState(proc.shell.cwd, 0, proc.argv[0].rsplit("/", 1)[-1])
    child = _Proc(proc.argv, dict(proc.env), proc.stdin, proc.out, proc.err, proc.view, proc.runtime, shell)
    args = proc.argv[1:]
    if args and args[0] == "-c":
        if len(args) < 2:
            await proc.complain(f"{shell.name}: -c: option requires an argument\n")
            return 2
        return await _script(child, args[1])
    if args and not args[0].startswith("-"):
        script = proc.view.read(proc.path(args[0]))
        if script is None:
            await proc.complain(f"{shell.name}: 0: cannot open {args[0]}: No such file\n")
            return 2
        return await _script(child, script.decode(errors="replace"))
    status = 0
    while True:  # an interactive shell reads commands from stdin until it ends
        line = await proc.stdin.readline()
        if not line:
            return status
        try:
            status = await run_script(child, line.decode(errors="replace"))
        except ShellExit as done:
            return done.code


async def _script(proc: _Proc, script: str) -> int:
    try:
        return await run_script(proc, script)
    except ShellExit as done:
        return done.code


@_command("exit")
async def _exit(proc: _Proc) -> int:
    raise ShellExit(
        int(proc.argv[1]) if len(proc.argv) > 1 and proc.argv[1].isdigit() else proc.shell.last_status
    )


@_command("export")
async def _export(proc: _Proc) -> int:
    for arg in proc.argv[1:]:
        if "=" in arg:
            name, _, value = arg.partition("=")
            proc.env[name] = value
    return 0


@_command("cd")
async def _cd(proc: _Proc) -> int:
    target = proc.path(proc.argv[1] if len(proc.argv) > 1 else proc.env.get("HOME", "/"))
    if not proc.view.is_dir(target):
        await proc.complain(f"{proc.shell.name}: 1: cd: can't cd to {proc.argv[1]}\n")
        return 2
    proc.shell.cwd = target
    return 0


@_command("true", ":")
async def _true(proc: _Proc) -> int:
    return 0


@_command("false")
async def _false(proc: _Proc) -> int:
    return 1


@_command("echo")
async def _echo(proc: _Proc) -> int:
    args = proc.argv[1:]
    newline = True
    if args and args[0] == "-n":
        newline, args = False, args[1:]
    await proc.say(" ".join(args) + ("\n" if newline else ""))
    return 0


@_command("printf")
async def _printf(proc: _Proc) -> int:
    if len(proc.argv) < 2:
        return 1
    fmt = proc.argv[1].replace("\\n", "\n").replace("\\t", "\t")
    args = proc.argv[2:]
    out = re.sub(r"%[sd]", lambda _: args.pop(0) if args else "", fmt)
    await proc.say(out)
    return 0


@_command("env", "printenv")
async def _env(proc: _Proc) -> int:
    args = proc.argv[1:]
    if proc.argv[0].endswith("printenv") and args:
        values = [proc.env[a] for a in args if a in proc.env]
        await proc.say("".join(f"{v}\n" for v in values))
        return 0 if len(values) == len(args) else 1
    env = dict(proc.env)
    while args and "=" in args[0]:
        name, _, value = args.pop(0).partition("=")
        env[name] = value
    if args:
        child = _Proc(args, env, proc.stdin, proc.out, proc.err, proc.view, proc.runtime, proc.shell)
        if proc.runtime._lookup(args[0].rsplit("/", 1)[-1], proc.view.container) is None:
            await proc.complain(f"env: '{args[0]}': No such file or directory\n")
            return 127
        return await proc.runtime.run(child)
    await proc.say("".join(f"{k}={v}\n" for k, v in env.items()))
    return 0


@_command("pwd")
async def _pwd(proc: _Proc) -> int:
    await proc.say(proc.shell.cwd + "\n")
    return 0


@_command("hostname")
async def _hostname(proc: _Proc) -> int:
    await proc.say((proc.view.read("/etc/hostname") or b"\n").decode())
    return 0


@_command("whoami")
async def _whoami(proc: _Proc) -> int:
    await proc.say("root\n")
    return 0


@_command("id")
async def _id(proc: _Proc) -> int:
    await proc.say("uid=0(root) gid=0(root) groups=0(root)\n")
    return 0


@_command("uname")
async def _uname(proc: _Proc) -> int:
    node = proc.runtime._node(proc.view.pod)
    kernel = str(
        ((node.get("status") or {}).get("nodeInfo") or {}).get("kernelVersion") or "5.15.0-1079-azure"
    )
    parts = {"-s": "Linux", "-r": kernel, "-m": "x86_64", "-n": proc.env.get("HOSTNAME", "")}
    args = proc.argv[1:] or ["-s"]
    if "-a" in args:
        args = ["-s", "-n", "-r", "-m"]
    await proc.say(" ".join(parts.get(a, "") for a in args if a in parts) + "\n")
    return 0


@_command("date")
async def _date(proc: _Proc) -> int:
    await proc.say(proc.runtime.ctx.clock.now().strftime("%a %b %d %H:%M:%S UTC %Y") + "\n")
    return 0


@_command("sleep")
async def _sleep(proc: _Proc) -> int:
    try:
        seconds = float(proc.argv[1].rstrip("s")) if len(proc.argv) > 1 else 0.0
    except ValueError:
        await proc.complain(f"sleep: invalid time interval '{proc.argv[1]}'\n")
        return 1
    if seconds == float("inf"):
        await asyncio.Event().wait()
    await proc.runtime.ctx.clock.sleep(seconds)
    return 0


def _split_flags(args: list[str]) -> tuple[set[str], list[str]]:
    flags: set[str] = set()
    rest: list[str] = []
    for arg in args:
        if arg.startswith("-") and len(arg) > 1 and not arg.startswith("--"):
            flags.update(arg[1:])
        elif arg.startswith("--"):
            flags.add(arg)
        else:
            rest.append(arg)
    return flags, rest


@_command("cat")
async def _cat(proc: _Proc) -> int:
    _, names = _split_flags(proc.argv[1:])
    if not names or names == ["-"]:
        while chunk := await proc.stdin.read_chunk():  # streams, as cat does
            await proc.out(chunk)
        return 0
    status = 0
    for name in names:
        path = proc.path(name)
        data = proc.view.read(path)
        if data is None:
            why = "Is a directory" if proc.view.is_dir(path) else "No such file or directory"
            await proc.complain(f"cat: {name}: {why}\n")
            status = 1
        else:
            await proc.out(data)
    return status


@_command("ls")
async def _ls(proc: _Proc) -> int:
    flags, names = _split_flags(proc.argv[1:])
    status = 0
    targets = names or ["."]
    for index, name in enumerate(targets):
        path = proc.path(name)
        if proc.view.read(path) is not None:
            await proc.say(_ls_line(name, proc.view.read(path) or b"", "l" in flags, False))
            continue
        if not proc.view.is_dir(path):
            await proc.complain(f"ls: cannot access '{name}': No such file or directory\n")
            status = 2
            continue
        entries = proc.view.listing(path)
        if "a" in flags:
            entries = [".", "..", *entries]
        if len(targets) > 1:
            await proc.say(("\n" if index else "") + f"{name}:\n")
        if "l" in flags:
            await proc.say(f"total {len(entries) * 4}\n")
            for entry in entries:
                child = posixpath.join(path, entry)
                data = proc.view.read(child)
                await proc.say(_ls_line(entry, data or b"", True, data is None))
        elif entries:
            await proc.say("\n".join(entries) + "\n")
    return status


def _ls_line(name: str, data: bytes, long: bool, directory: bool) -> str:
    if not long:
        return name + "\n"
    mode = "drwxr-xr-x" if directory else "-rw-r--r--"
    return f"{mode} 1 root root {4096 if directory else len(data):>6} Jan  1 00:00 {name}\n"


@_command("mkdir")
async def _mkdir(proc: _Proc) -> int:
    _, names = _split_flags(proc.argv[1:])
    for name in names:
        proc.view.make_dir(proc.path(name))
    return 0


@_command("touch")
async def _touch(proc: _Proc) -> int:
    _, names = _split_flags(proc.argv[1:])
    for name in names:
        path = proc.path(name)
        proc.view.write(path, proc.view.read(path) or b"")
    return 0


@_command("rm")
async def _rm(proc: _Proc) -> int:
    flags, names = _split_flags(proc.argv[1:])
    status = 0
    for name in names:
        path = proc.path(name)
        if proc.view.read(path) is None and not proc.view.is_dir(path):
            if "f" not in flags:
                await proc.complain(f"rm: cannot remove '{name}': No such file or directory\n")
                status = 1
            continue
        if proc.view.is_dir(path) and "r" not in flags and "R" not in flags:
            await proc.complain(f"rm: cannot remove '{name}': Is a directory\n")
            status = 1
            continue
        proc.view.remove(path)
    return status


@_command("test", "[")
async def _test(proc: _Proc) -> int:
    args = proc.argv[1:]
    if proc.argv[0] == "[":
        if not args or args[-1] != "]":
            await proc.complain("[: missing ]\n")
            return 2
        args = args[:-1]
    negate = bool(args) and args[0] == "!"
    args = args[1:] if negate else args
    result = False
    if len(args) == 2 and args[0] in ("-e", "-f", "-d", "-s", "-n", "-z"):
        op, value = args
        path = proc.path(value)
        data = proc.view.read(path)
        result = {
            "-e": data is not None or proc.view.is_dir(path),
            "-f": data is not None,
            "-d": data is None and proc.view.is_dir(path),
            "-s": bool(data),
            "-n": bool(value),
            "-z": not value,
        }[op]
    elif len(args) == 3 and args[1] in ("=", "==", "!="):
        result = (args[0] == args[2]) != (args[1] == "!=")
    elif len(args) == 3 and args[1] in ("-eq", "-ne", "-gt", "-lt", "-ge", "-le"):
        try:
            a, b = int(args[0]), int(args[2])
        except ValueError:
            await proc.complain(f"{proc.argv[0]}: Illegal number\n")
            return 2
        result = {"-eq": a == b, "-ne": a != b, "-gt": a > b, "-lt": a < b, "-ge": a >= b, "-le": a <= b}[
            args[1]
        ]
    elif len(args) == 1:
        result = bool(args[0])
    return 0 if result != negate else 1


@_command("which")
async def _which(proc: _Proc) -> int:
    status = 0
    for name in proc.argv[1:]:
        if proc.runtime._lookup(name, proc.view.container) is None:
            status = 1
        else:
            await proc.say(f"/usr/bin/{name}\n")
    return status


async def _lines(proc: _Proc, names: list[str]) -> list[bytes] | None:
    if not names:
        return (await proc.stdin.read_all()).splitlines(keepends=True)
    out: list[bytes] = []
    for name in names:
        data = proc.view.read(proc.path(name))
        if data is None:
            await proc.complain(f"{proc.argv[0]}: {name}: No such file or directory\n")
            return None
        out.extend(data.splitlines(keepends=True))
    return out


def _count_option(args: list[str], default: int) -> tuple[int, list[str]]:
    count, rest = default, []
    i = 0
    while i < len(args):
        if args[i] == "-n" and i + 1 < len(args):
            count, i = int(args[i + 1]), i + 2
            continue
        if re.fullmatch(r"-n?\d+", args[i]):
            count = int(args[i].lstrip("-n"))
        else:
            rest.append(args[i])
        i += 1
    return count, rest


@_command("head", "tail")
async def _head_tail(proc: _Proc) -> int:
    count, names = _count_option(proc.argv[1:], 10)
    lines = await _lines(proc, names)
    if lines is None:
        return 1
    chosen = lines[:count] if proc.argv[0] == "head" else lines[-count:] if count else []
    await proc.out(b"".join(chosen))
    return 0


@_command("wc")
async def _wc(proc: _Proc) -> int:
    flags, names = _split_flags(proc.argv[1:])
    lines = await _lines(proc, names)
    if lines is None:
        return 1
    data = b"".join(lines)
    if "l" in flags:
        await proc.say(f"{len(lines)}\n")
    else:
        await proc.say(f"{len(lines):>7} {len(data.split()):>7} {len(data):>7}\n")
    return 0


@_command("grep")
async def _grep(proc: _Proc) -> int:
    flags, rest = _split_flags([a for a in proc.argv[1:] if a != "-e"])
    if not rest:
        await proc.complain("Usage: grep [OPTION]... PATTERNS [FILE]...\n")
        return 2
    pattern, names = rest[0], rest[1:]
    regex = re.compile(
        pattern if "E" in flags or "P" in flags else _basic_regex(pattern), re.I if "i" in flags else 0
    )
    if "F" in flags:
        regex = re.compile(re.escape(pattern), re.I if "i" in flags else 0)
    lines = await _lines(proc, names)
    if lines is None:
        return 2
    matched = [line for line in lines if bool(regex.search(line.decode(errors="replace"))) != ("v" in flags)]
    if "q" in flags:
        return 0 if matched else 1
    if "c" in flags:
        await proc.say(f"{len(matched)}\n")
    else:
        await proc.out(b"".join(line if line.endswith(b"\n") else line + b"\n" for line in matched))
    return 0 if matched else 1


def _basic_regex(pattern: str) -> str:
    """POSIX basic regular expressions: `\\|`, `\\(`, `\\+` are the operators; bare ones are literal."""
    out, i = "", 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "|()+?{}":
            out += pattern[i + 1]
            i += 2
            continue
        out += "\\" + pattern[i] if pattern[i] in "|()+?{}" else pattern[i]
        i += 1
    return out


@_command("seq")
async def _seq(proc: _Proc) -> int:
    try:
        numbers = [int(a) for a in proc.argv[1:]]
    except ValueError:
        await proc.complain(f"seq: invalid argument: {proc.argv[1:]}\n")
        return 1
    first, step, last = {1: (1, 1, *numbers), 2: (numbers[0], 1, numbers[-1]), 3: tuple(numbers)}.get(
        len(numbers), (1, 1, 0)
    )
    await proc.say("".join(f"{n}\n" for n in range(first, last + (1 if step > 0 else -1), step or 1)))
    return 0


@_command("gzip", "gunzip", "zcat")
async def _gzip(proc: _Proc) -> int:
    data = await proc.stdin.read_all()
    if proc.argv[0] in ("gunzip", "zcat") or "-d" in proc.argv[1:]:
        try:
            await proc.out(gzip.decompress(data))
        except (OSError, EOFError):
            await proc.complain("gzip: stdin: not in gzip format\n")
            return 1
        return 0
    await proc.out(gzip.compress(data))
    return 0


@_command("base64")
async def _base64(proc: _Proc) -> int:
    data = await proc.stdin.read_all()
    if "-d" in proc.argv[1:] or "--decode" in proc.argv[1:]:
        try:
            await proc.out(base64.b64decode(data))
        except ValueError:
            await proc.complain("base64: invalid input\n")
            return 1
        return 0
    encoded = base64.b64encode(data).decode()
    await proc.say("".join(encoded[i : i + 76] + "\n" for i in range(0, len(encoded), 76)) or "\n")
    return 0


@_command("sort")
async def _sort(proc: _Proc) -> int:
    flags, names = _split_flags(proc.argv[1:])
    lines = await _lines(proc, names)
    if lines is None:
        return 2
    text = [line.rstrip(b"\n") for line in lines]
    ordered = sorted(set(text) if "u" in flags else text, reverse="r" in flags)
    await proc.out(b"".join(line + b"\n" for line in ordered))
    return 0


@_command("uptime")
async def _uptime(proc: _Proc) -> int:
    now = proc.runtime.ctx.clock.now()
    minutes = int(proc.runtime.ctx.clock.elapsed() // 60)
    await proc.say(
        f" {now:%H:%M:%S} up {minutes // 60}:{minutes % 60:02d},  0 users,  load average: 0.08, 0.03, 0.01\n"
    )
    return 0


@_command("ps")
async def _ps(proc: _Proc) -> int:
    argv = _commands.argv_of(proc.view.container) or [str(proc.view.container.get("image", ""))]
    await proc.say(f"    PID TTY          TIME CMD\n      1 ?        00:00:01 {argv[0].rsplit('/', 1)[-1]}\n")
    return 0


@_command("tar")
async def _tar(proc: _Proc) -> int:
    """`tar cf - PATH…` and `tar xf - [-C DIR]`, which `kubectl cp` runs in the container."""
    args = list(proc.argv[1:])
    if args and not args[0].startswith("-"):
        args[0] = "-" + args[0]
    flags: set[str] = set()
    archive = "-"
    directory = proc.shell.cwd
    paths: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-C" and i + 1 < len(args):
            directory, i = proc.path(args[i + 1]), i + 2
            continue
        if arg.startswith("--"):
            i += 1
            continue
        if arg.startswith("-"):
            letters = arg[1:]
            flags.update(letters)
            if "f" in letters and i + 1 < len(args) and letters.endswith("f"):
                archive, i = args[i + 1], i + 2
                continue
        else:
            paths.append(arg)
        i += 1
    if archive != "-":
        await proc.complain("tar: only archives on stdin/stdout are supported here\n")
        return 2
    mode = "gz" if "z" in flags else ""
    if "c" in flags:
        buffer = BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz" if mode else "w", format=tarfile.GNU_FORMAT) as tar:
            for name in paths:
                path = posixpath.normpath(posixpath.join(directory, name))
                data = proc.view.read(path)
                arcname = name.lstrip("/")
                if data is not None:
                    _add(tar, arcname, data)
                elif proc.view.is_dir(path):
                    prefix = path.rstrip("/") + "/"
                    for file, content in sorted(proc.view.all_files().items()):
                        if file.startswith(prefix):
                            _add(tar, posixpath.join(arcname, file[len(prefix) :]), content)
                else:
                    await proc.complain(f"tar: {arcname}: Cannot stat: No such file or directory\n")
                    await proc.out(buffer.getvalue())
                    return 2
        await proc.out(buffer.getvalue())
        return 0
    if "x" in flags:
        data = await proc.stdin.read_all()
        try:
            with tarfile.open(fileobj=BytesIO(data), mode="r:gz" if mode else "r") as tar:
                for member in tar.getmembers():
                    target = posixpath.normpath(posixpath.join(directory, member.name))
                    if member.isdir():
                        proc.view.make_dir(target)
                    elif member.isfile():
                        extracted = tar.extractfile(member)
                        proc.view.write(target, extracted.read() if extracted else b"")
        except tarfile.TarError:
            await proc.complain("tar: This does not look like a tar archive\n")
            return 2
        return 0
    await proc.complain("tar: You must specify one of the '-Acdtrux', '--delete' or '--test-label' options\n")
    return 2


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, BytesIO(data))


@_command("curl", "wget")
async def _curl(proc: _Proc) -> int:
    exchange = HttpExchange.from_argv(proc.argv)
    if exchange.usage_error:
        await proc.complain(exchange.usage_error)
        return 2
    target = resolve_address(proc.runtime.store, proc.view.pod, exchange.host, exchange.port, proc.runtime)
    return await exchange.perform(target, proc.out, proc.err, proc.runtime.ctx)
