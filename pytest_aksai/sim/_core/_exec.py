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
import posixpath
import re
import secrets
import tarfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any, Protocol

from pytest_aksai.sim._apiserver._streams import ExecStartError
from pytest_aksai.sim._core import _commands
from pytest_aksai.sim._core._container_fs import ContainerFiles, ContainerView
from pytest_aksai.sim._core._net import HttpExchange, resolve_address
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
        self._buffer = data
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

    async def read_all(self) -> bytes:
        while await self._fill():
            pass
        data, self._buffer = self._buffer, b""
        return data

    async def readline(self) -> bytes:
        while b"\n" not in self._buffer and await self._fill():
            pass
        line, sep, rest = self._buffer.partition(b"\n")
        self._buffer = rest
        return line + sep


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

    def _view(self, pod: Obj, container: Obj) -> ContainerView:
        key = (str(pod["metadata"].get("uid")), str(container.get("name")))
        if len(self._files) > 256:
            live = {
                str(p["metadata"].get("uid"))
                for p in self.store.list_page(self.store.resource("v1", "pods"), None).items
            }
            self._files = {k: v for k, v in self._files.items() if k[0] in live}
        return ContainerView(self.store, pod, container, self._files.setdefault(key, ContainerFiles()))

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


def install(ctx: Any) -> ContainerRuntime:
    runtime = ContainerRuntime(ctx)
    ctx.store.container_runtime = runtime
    return runtime


# ---- the shell ---------------------------------------------------------------------------------------
_OPERATORS = ("&&", "||", ";", "|", "\n")
_REDIRECTS = ("2>&1", "1>&2", ">&2", "&>", ">>", "2>>", "2>", ">", "<")
Word = list[tuple[str, str]]  # (kind, text): kind "lit" (quoted, no expansion), "exp" (expands $VAR)


class _SyntaxError(Exception):
    pass


def _tokenize(script: str) -> list[Word | str]:
    """Words (with their quoting) and operator strings."""
    tokens: list[Word | str] = []
    word: Word = []
    started = False
    i = 0

    def flush() -> None:
        nonlocal word, started
        if started:
            tokens.append(word)
        word, started = [], False

    while i < len(script):
        ch = script[i]
        if ch in " \t":
            flush()
            i += 1
        elif ch == "#" and not started:
            while i < len(script) and script[i] != "\n":
                i += 1
        elif ch == "'":
            end = script.find("'", i + 1)
            if end < 0:
                raise _SyntaxError("Unterminated quoted string")
            word.append(("lit", script[i + 1 : end]))
            started, i = True, end + 1
        elif ch == '"':
            j, buf = i + 1, ""
            while j < len(script) and script[j] != '"':
                if script[j] == "\\" and j + 1 < len(script) and script[j + 1] in '"\\$`':
                    buf += "\\" + script[j + 1] if script[j + 1] == "$" else script[j + 1]
                    j += 2
                    continue
                buf += script[j]
                j += 1
            if j >= len(script):
                raise _SyntaxError("Unterminated quoted string")
            word.append(("exp", buf))
            started, i = True, j + 1
        elif ch == "\\" and i + 1 < len(script):
            word.append(("lit", script[i + 1]))
            started, i = True, i + 2
        else:
            matched = next(
                (op for op in (*_REDIRECTS, *_OPERATORS) if script.startswith(op, i)),
                None,
            )
            if matched is not None and (matched not in ("2>", "2>>", "2>&1", "1>&2") or not started):
                flush()
                tokens.append(matched)
                i += len(matched)
                continue
            j = i
            while j < len(script) and script[j] not in " \t'\"\\;&|<>\n":
                j += 1
            word.append(("exp", script[i:j] if j > i else script[i]))
            started, i = True, max(j, i + 1)
    flush()
    return tokens


_VARIABLE = re.compile(r"\\\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*|\?|\$)")


def _expand(word: Word, env: dict[str, str], state: _ShellState) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "\\$":
            return "$"
        name = match.group(1) or match.group(2)
        if name == "?":
            return str(state.last_status)
        if name == "$":
            return "1"
        return env.get(name, "")

    return "".join(text if kind == "lit" else _VARIABLE.sub(replace, text) for kind, text in word)


@dataclass
class _Simple:
    words: list[Word] = field(default_factory=list)
    redirects: list[tuple[str, Word | None]] = field(default_factory=list)


def _parse(tokens: list[Word | str]) -> list[tuple[list[_Simple], str]]:
    """A list of (pipeline, the operator after it)."""
    program: list[tuple[list[_Simple], str]] = []
    pipeline: list[_Simple] = [_Simple()]
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if isinstance(token, list):
            pipeline[-1].words.append(token)
        elif token in _REDIRECTS:
            if token in ("2>&1", "1>&2", ">&2"):
                pipeline[-1].redirects.append((token, None))
            else:
                i += 1
                if i >= len(tokens) or not isinstance(tokens[i], list):
                    raise _SyntaxError("redirection unexpected")
                target = tokens[i]
                assert isinstance(target, list)
                pipeline[-1].redirects.append((token, target))
        elif token == "|":
            if not pipeline[-1].words:
                raise _SyntaxError('Syntax error: "|" unexpected')
            pipeline.append(_Simple())
        else:
            if pipeline[-1].words or len(pipeline) > 1:
                program.append((pipeline, token))
            elif token in ("&&", "||"):
                raise _SyntaxError(f'Syntax error: "{token}" unexpected')
            pipeline = [_Simple()]
        i += 1
    if pipeline[-1].words:
        program.append((pipeline, ";"))
    return program


async def _run_script(proc: _Proc, script: str) -> int:
    try:
        program = _parse(_tokenize(script))
    except _SyntaxError as exc:
        await proc.complain(f"{proc.shell.name}: 1: {exc}\n")
        return 2
    status = proc.shell.last_status
    skip = False
    for pipeline, operator in program:
        if not skip:
            try:
                status = await _run_pipeline(proc, pipeline)
            except _Exit as done:
                return done.code
            proc.shell.last_status = status
        skip = (operator == "&&" and status != 0) or (operator == "||" and status == 0)
    return status


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


async def _run_pipeline(proc: _Proc, pipeline: list[_Simple]) -> int:
    data: bytes | None = None
    status = 0
    for index, simple in enumerate(pipeline):
        last = index == len(pipeline) - 1
        buffer = bytearray()

        async def to_buffer(chunk: bytes, buffer: bytearray = buffer) -> None:
            buffer.extend(chunk)

        stdin = proc.stdin if data is None and index == 0 else _Input(data=data or b"")
        status = await _run_simple(proc, simple, stdin, proc.out if last else to_buffer)
        data = bytes(buffer)
    return status


async def _run_simple(proc: _Proc, simple: _Simple, stdin: _Input, out: Writer) -> int:
    argv = [_expand(w, proc.env, proc.shell) for w in simple.words]
    env = proc.env  # builtins such as export change the shell's own variables
    if argv and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", argv[0]):
        env = dict(proc.env)
    while argv and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", argv[0]):
        name, _, value = argv.pop(0).partition("=")
        env[name] = value
    if not argv:
        proc.env.update(env)
        return 0
    err = proc.err
    files: list[tuple[str, bytearray, bool]] = []
    for op, target in simple.redirects:
        path = proc.path(_expand(target, proc.env, proc.shell)) if target is not None else ""
        if op == "2>&1":
            err = out
        elif op in ("1>&2", ">&2"):
            out = err
        elif op == "<":
            content = proc.view.read(path)
            if content is None:
                await proc.complain(f"{proc.shell.name}: 1: cannot open {path}: No such file\n")
                return 2
            stdin = _Input(data=content)
        else:
            sink = bytearray()
            if path != "/dev/null":
                files.append((path, sink, op in (">>", "2>>")))

            async def into(chunk: bytes, sink: bytearray = sink) -> None:
                sink.extend(chunk)

            if op in (">", ">>"):
                out = into
            elif op in ("2>", "2>>"):
                err = into
            else:
                out = err = into
    child = _Proc(argv, env, stdin, out, err, proc.view, proc.runtime, proc.shell)
    status = await proc.runtime.run(child)
    for path, sink, append in files:
        previous = (proc.view.read(path) or b"") if append else b""
        proc.view.write(path, previous + bytes(sink))
    return status


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
        return await _run_script(child, args[1])
    if args and not args[0].startswith("-"):
        script = proc.view.read(proc.path(args[0]))
        if script is None:
            await proc.complain(f"{shell.name}: 0: cannot open {args[0]}: No such file\n")
            return 2
        return await _run_script(child, script.decode(errors="replace"))
    status = 0
    while True:  # an interactive shell reads commands from stdin until it ends
        line = await proc.stdin.readline()
        if not line:
            return status
        try:
            status = await _run_script(child, line.decode(errors="replace"))
        except _Exit as done:
            return done.code


@_command("exit")
async def _exit(proc: _Proc) -> int:
    raise _Exit(
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
        await proc.out(await proc.stdin.read_all())
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
