"""vLLM's OpenAI-compatible HTTP surface (vllm/entrypoints/openai) over the simulated engine."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pytest_aksai.sim._faults import ActiveFaults
from pytest_aksai.sim.contract import Fault

from ._config import EngineConfig, GpuPerf, ServedModel
from ._engine import EngineDeadError, EngineOverloadedError, EngineRequest, Output, SimEngine
from ._load_faults import LoadFaults, apply_kv_fault
from ._metrics import VllmMetrics
from ._text import generate, render_chat, token_ids, tokenize

DEFAULT_VLLM_VERSION = "0.10.2"
LEGACY_VLLM_VERSION = "0.9.2"
"""What /version answers for a server with `legacy_metrics=True` (V1 engine, before the rename of
`vllm:gpu_cache_usage_perc` to `vllm:kv_cache_usage_perc`)."""

_Json = dict[str, Any]


class _Server:
    def __init__(self, model: ServedModel, engine: SimEngine, faults: ActiveFaults, version: str) -> None:
        self.model = model
        self.engine = engine
        self.faults = faults
        self.version = version
        self.created = int(time.time())
        self.load_faults = LoadFaults(faults)

    def served_name(self) -> str:
        return _served_name(self.model, self.faults)


def _served_name(model: ServedModel, faults: ActiveFaults) -> str:
    if faults.is_active(Fault.VLLM_WRONG_SERVED_NAME):
        # vLLM without --served-model-name serves under the model path: the HF repo id.
        return faults.parameter(Fault.VLLM_WRONG_SERVED_NAME, model.hf_id)
    return model.served_name


_SERVER = web.AppKey("sim_vllm_server", _Server)


# --- request bodies (the fields the simulation uses; others are accepted and ignored, as vLLM does) ----


class _StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool | None = True
    continuous_usage_stats: bool | None = False


class _SamplingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str | None = None
    max_tokens: int | None = None
    n: int = 1
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: _StreamOptions | None = None
    seed: int | None = None
    temperature: float | None = None
    top_p: float | None = None


class _TextPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class _Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[_TextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(part.text or "" for part in self.content if part.type == "text")
        return self.content or ""


class _ChatRequest(_SamplingRequest):
    messages: list[_Message] = Field(min_length=1)
    max_completion_tokens: int | None = None


class _CompletionRequest(_SamplingRequest):
    prompt: str | list[str] | list[int] | list[list[int]]


class _TokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str | None = None
    prompt: str | None = None
    messages: list[_Message] | None = None
    add_generation_prompt: bool = True


class _HttpError(Exception):
    def __init__(self, status: HTTPStatus, message: str, err_type: str, *, code: int | str | None = None,
                 param: str | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.status = status
        error = {
            "message": message,
            "type": err_type,
            "param": param,
            "code": int(status) if code is None else code,
        }
        self.body: _Json = {"error": error}

    def response(self) -> web.Response:
        return web.json_response(self.body, status=int(self.status))


def _bad_request(message: str, param: str | None = None) -> _HttpError:
    return _HttpError(HTTPStatus.BAD_REQUEST, message, "BadRequestError", param=param)


_T = TypeVar("_T", bound=BaseModel)


async def _parse(request: web.Request, model: type[_T]) -> _T:
    try:
        raw = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _bad_request(f"The request body is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise _bad_request(f"The request body must be a JSON object, got {type(raw).__name__}.")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise _bad_request(str(exc)) from exc


# --- handlers -------------------------------------------------------------------------------------


@web.middleware
async def _errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                  ) -> web.StreamResponse:  # fmt: skip
    try:
        return await handler(request)
    except _HttpError as exc:
        return exc.response()
    except web.HTTPNotFound:
        return web.json_response({"detail": "Not Found"}, status=404)
    except web.HTTPMethodNotAllowed:
        return web.json_response({"detail": "Method Not Allowed"}, status=405)


async def _health(request: web.Request) -> web.Response:
    return web.Response(status=503 if request.app[_SERVER].engine.dead else 200)


async def _version(request: web.Request) -> web.Response:
    return web.json_response({"version": request.app[_SERVER].version})


async def _models(request: web.Request) -> web.Response:
    server = request.app[_SERVER]
    card = {
        "id": server.served_name(),
        "object": "model",
        "created": server.created,
        "owned_by": "vllm",
        "root": server.model.hf_id,
        "parent": None,
        "max_model_len": server.engine.config.max_model_len,
        "permission": [
            {
                "id": f"modelperm-{uuid.uuid4().hex}",
                "object": "model_permission",
                "created": server.created,
                "allow_create_engine": False,
                "allow_sampling": True,
                "allow_logprobs": True,
                "allow_search_indices": False,
                "allow_view": True,
                "allow_fine_tuning": False,
                "organization": "*",
                "group": None,
                "is_blocking": False,
            }
        ],
    }
    return web.json_response({"object": "list", "data": [card]})


async def _metrics(request: web.Request) -> web.Response:
    server = request.app[_SERVER]
    if server.faults.is_active(Fault.VLLM_NO_METRICS):
        return web.json_response({"detail": "Not Found"}, status=404)
    body = server.engine.metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


def _check_model(server: _Server, requested: str | None) -> str:
    name = server.served_name()
    if requested is not None and requested != name:
        raise _HttpError(HTTPStatus.NOT_FOUND, f"The model `{requested}` does not exist.", "NotFoundError")
    return name


def _check_length(server: _Server, prompt_tokens: int, max_tokens: int | None) -> int:
    """vLLM's input validation against max-model-len (serving_engine._validate_input); returns max_tokens."""
    limit = server.engine.config.max_model_len
    if max_tokens is None:
        if prompt_tokens >= limit:
            raise _bad_request(
                f"This model's maximum context length is {limit} tokens. However, you requested "
                f"{prompt_tokens} tokens in the messages, Please reduce the length of the messages."
            )
        return limit - prompt_tokens
    if max_tokens < 1:
        raise _bad_request(f"max_tokens must be at least 1, got {max_tokens}.", "max_tokens")
    if prompt_tokens + max_tokens > limit:
        raise _bad_request(
            f"This model's maximum context length is {limit} tokens. However, you requested "
            f"{prompt_tokens + max_tokens} tokens ({prompt_tokens} in the messages, {max_tokens} in the "
            "completion). Please reduce the length of the messages or completion."
        )
    return max_tokens


def _stop_strings(stop: str | list[str] | None) -> list[str]:
    if stop is None:
        return []
    return [stop] if isinstance(stop, str) else list(stop)


def _prompt_text(prompt: str | list[str] | list[int] | list[list[int]]) -> tuple[str, int]:
    """(text used to seed generation, prompt token count) for the forms of `prompt` vLLM accepts."""
    if isinstance(prompt, str):
        return prompt, len(tokenize(prompt))
    if len(prompt) != 1 and (not prompt or not isinstance(prompt[0], int)):
        raise _bad_request(
            f"This simulated vLLM server takes one prompt per request, got {len(prompt)}; send the prompts "
            "as separate requests.",
            "prompt",
        )
    first = prompt[0]
    if isinstance(first, str):
        return first, len(tokenize(first))
    ids = [int(x) for x in (first if isinstance(first, list) else prompt)]  # type: ignore[arg-type]
    return " ".join(map(str, ids)), len(ids)


async def _completions(request: web.Request) -> web.StreamResponse:
    server = request.app[_SERVER]
    body = await _parse(request, _CompletionRequest)
    name = _check_model(server, body.model)
    prompt, prompt_tokens = _prompt_text(body.prompt)
    return await _serve(request, server, body, name, prompt, prompt_tokens, body.max_tokens, chat=False)


async def _chat(request: web.Request) -> web.StreamResponse:
    server = request.app[_SERVER]
    body = await _parse(request, _ChatRequest)
    name = _check_model(server, body.model)
    if server.faults.is_active(Fault.VLLM_BROKEN_CHAT_TEMPLATE):
        raise _HttpError(
            HTTPStatus.INTERNAL_SERVER_ERROR,
            "An error occurred in `transformers` while applying chat template: "
            "jinja2.exceptions.TemplateSyntaxError: unexpected '}' (chat_template line 1)",
            "InternalServerError",
        )
    prompt = render_chat([{"role": m.role, "content": m.text()} for m in body.messages])
    max_tokens = body.max_completion_tokens if body.max_completion_tokens is not None else body.max_tokens
    return await _serve(request, server, body, name, prompt, len(tokenize(prompt)), max_tokens, chat=True)


async def _serve(request: web.Request, server: _Server, body: _SamplingRequest, name: str, prompt: str,
                 prompt_tokens: int, max_tokens: int | None, *, chat: bool) -> web.StreamResponse:  # fmt: skip
    if body.stream_options is not None and not body.stream:
        raise _bad_request("Stream options can only be defined when `stream=True`.", "stream_options")
    if body.n != 1:
        raise _bad_request(f"n={body.n} is not supported by the simulated vLLM server; only n=1 is.", "n")
    max_tokens = _check_length(server, prompt_tokens, max_tokens)
    planned = generate(prompt, seed=body.seed, served_name=server.model.served_name).tokens
    arrival = server.engine.now()
    await server.load_faults.before_scheduling()
    if server.load_faults.fails_under_load(server.engine):
        raise _HttpError(HTTPStatus.INTERNAL_SERVER_ERROR, "EngineCore encountered an issue while processing the "
                         "request (vllm-errors-under-load)", "InternalServerError")  # fmt: skip
    try:
        seq = server.engine.submit(prompt_tokens=prompt_tokens, max_tokens=max_tokens, planned=planned,
                                   stop=_stop_strings(body.stop), arrival=arrival)  # fmt: skip
    except EngineOverloadedError as exc:
        raise _HttpError(
            HTTPStatus.TOO_MANY_REQUESTS, str(exc), "RateLimitError", code="rate_limit_exceeded"
        ) from exc
    except EngineDeadError as exc:
        raise _HttpError(HTTPStatus.INTERNAL_SERVER_ERROR, str(exc), "InternalServerError") from exc
    shape = _Shape(chat=chat, name=name, prompt_tokens=prompt_tokens)
    try:
        if body.stream:
            options = body.stream_options
            usage = bool(options and options.include_usage)
            frames = shape.stream(seq, include_usage=usage)
            if server.faults.is_active(Fault.VLLM_BUFFERED_STREAM):
                whole = b"".join([frame async for frame in frames])
                return web.Response(body=whole, headers={"Content-Type": "text/event-stream; charset=utf-8"})
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
            await response.prepare(request)
            async for frame in frames:
                await response.write(frame)
            await response.write_eof()
            return response
        return web.json_response(await shape.complete(seq))
    finally:
        server.engine.abort(seq)


class _Shape:
    """The JSON of one completion or chat response, streamed or whole."""

    def __init__(self, *, chat: bool, name: str, prompt_tokens: int) -> None:
        self.chat = chat
        self.name = name
        self.prompt_tokens = prompt_tokens
        self.id = f"chatcmpl-{uuid.uuid4().hex}" if chat else f"cmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())

    def _usage(self, seq: EngineRequest, *, details: bool) -> _Json:
        usage: _Json = {"prompt_tokens": self.prompt_tokens, "total_tokens": self.prompt_tokens + seq.generated,
                        "completion_tokens": seq.generated}  # fmt: skip
        if details:
            usage["prompt_tokens_details"] = None
        return usage

    async def _outputs(self, seq: EngineRequest) -> AsyncIterator[Output]:
        while True:
            out = await seq.outputs.get()
            if isinstance(out, EngineDeadError):
                raise _HttpError(HTTPStatus.INTERNAL_SERVER_ERROR, str(out), "InternalServerError")
            yield out
            if out.finish_reason is not None:
                return

    async def complete(self, seq: EngineRequest) -> _Json:
        text, last = "", Output("")
        async for out in self._outputs(seq):
            text += out.delta
            last = out
        choice: _Json
        if self.chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": text, "refusal": None,
                                              "annotations": None, "audio": None, "function_call": None,
                                              "tool_calls": [], "reasoning_content": None},
                      "logprobs": None, "finish_reason": last.finish_reason, "stop_reason": last.stop_reason}  # fmt: skip
        else:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": last.finish_reason,
                      "stop_reason": last.stop_reason, "prompt_logprobs": None}  # fmt: skip
        return {
            "id": self.id,
            "object": "chat.completion" if self.chat else "text_completion",
            "created": self.created,
            "model": self.name,
            "choices": [choice],
            "service_tier": None,
            "system_fingerprint": None,
            "usage": self._usage(seq, details=True),
            "prompt_logprobs": None,
            "kv_transfer_params": None,
        }

    def _frame(self, payload: _Json) -> bytes:
        chunk = {"id": self.id, "object": "chat.completion.chunk" if self.chat else "text_completion",
                 "created": self.created, "model": self.name, **payload}  # fmt: skip
        return f"data: {json.dumps(chunk, separators=(',', ':'))}\n\n".encode()

    async def stream(self, seq: EngineRequest, *, include_usage: bool) -> AsyncIterator[bytes]:
        try:
            if self.chat:
                yield self._frame({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                                "logprobs": None, "finish_reason": None}]})  # fmt: skip
            async for out in self._outputs(seq):
                if not out.delta and out.finish_reason is None:
                    continue
                choice: _Json = {"index": 0}
                if self.chat:
                    choice["delta"] = {"content": out.delta}
                else:
                    choice["text"] = out.delta
                choice["logprobs"] = None
                choice["finish_reason"] = out.finish_reason
                if out.finish_reason is not None:
                    choice["stop_reason"] = out.stop_reason
                yield self._frame({"choices": [choice]})
            if include_usage:
                yield self._frame({"choices": [], "usage": self._usage(seq, details=False)})
        except _HttpError as exc:
            # Once streaming, an error can only travel as a data frame (vLLM's streaming error).
            yield f"data: {json.dumps(exc.body)}\n\n".encode()
        yield b"data: [DONE]\n\n"


async def _tokenize(request: web.Request) -> web.Response:
    server = request.app[_SERVER]
    body = await _parse(request, _TokenizeRequest)
    _check_model(server, body.model)
    if body.messages is not None:
        text = render_chat([{"role": m.role, "content": m.text()} for m in body.messages],
                           add_generation_prompt=body.add_generation_prompt)  # fmt: skip
    elif body.prompt is not None:
        text = body.prompt
    else:
        raise _bad_request("Either `prompt` or `messages` must be given.", "prompt")
    tokens = tokenize(text)
    return web.json_response({"count": len(tokens), "max_model_len": server.engine.config.max_model_len,
                              "tokens": token_ids(tokens, server.model.vocab_size), "token_strs": None})  # fmt: skip


def create_app(model: ServedModel, engine: EngineConfig, gpu: GpuPerf, faults: ActiveFaults, *,
               speedup: float = 1.0, legacy_metrics: bool = False, version: str | None = None
               ) -> web.Application:  # fmt: skip
    """The aiohttp application of one model pod's vLLM server. Its engine runs while the app is running.

    Raises EngineConfigError (a ValueError) with vLLM's start-up message when the engine could not start
    (weights do not fit, max-model-len too large for the KV cache or the model, …).
    """
    metrics = VllmMetrics(lambda: _served_name(model, faults), engine.max_model_len, legacy=legacy_metrics)
    sim = SimEngine(model, engine, gpu, metrics, speedup=speedup)  # raises EngineConfigError
    apply_kv_fault(faults, sim)
    version = version or (LEGACY_VLLM_VERSION if legacy_metrics else DEFAULT_VLLM_VERSION)
    app = web.Application(middlewares=[_errors])
    app[_SERVER] = _Server(model, sim, faults, version)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        sim.start()
        yield
        await sim.stop()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/health", _health)
    app.router.add_get("/version", _version)
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/metrics", _metrics)
    app.router.add_post("/v1/completions", _completions)
    app.router.add_post("/v1/chat/completions", _chat)
    app.router.add_post("/tokenize", _tokenize)
    return app


def engine_of(app: web.Application) -> SimEngine:
    """The running engine of an app created by `create_app` (after startup)."""
    return app[_SERVER].engine
