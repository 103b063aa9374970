"""A scheduled-token OpenAI stream server: the yardstick the client measures its own error against.

Every response writes its first content token `ttft_ms` after the request arrived and each further one
`itl_ms` later, on an absolute schedule; with both at 0 the whole stream goes out in one write. Counts are
honest (`usage.prompt_tokens` = words of the prompt); `--fail-every N` answers every Nth request with a
500; `GET /lateness` says how late the server itself wrote first and later tokens against the schedule.
Used by the benchmark and the tests, in its own process:
`python -m pytest_aksai.load._fake_server --ttft-ms 20 --itl-ms 5 --tokens 64` prints `PORT <n>`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from functools import cache
from typing import Any

from aiohttp import web

from ._histogram import LatencyHistogram


def _frame(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


@cache
def _frames(chat: bool, tokens: int, prompt_tokens: int) -> tuple[bytes, ...]:
    """role chunk (chat), one chunk per token, the usage chunk, [DONE]."""
    kind = "chat.completion.chunk" if chat else "text_completion"
    base = {"id": "fake", "object": kind, "created": 0, "model": "fake"}

    def choice(i: int) -> dict[str, Any]:
        text, finish = f" t{i}", ("length" if i == tokens - 1 else None)
        return {"index": 0, "delta": {"content": text}, "finish_reason": finish} if chat else \
            {"index": 0, "text": text, "finish_reason": finish}  # fmt: skip

    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": tokens,
        "total_tokens": prompt_tokens + tokens,
    }
    head = (
        [_frame({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})]
        if chat
        else []
    )
    body = [_frame({**base, "choices": [choice(i)]}) for i in range(tokens)]
    return (*head, *body, _frame({**base, "choices": [], "usage": usage}), b"data: [DONE]\n\n")


def create_app(*, ttft_ms: float, itl_ms: float, tokens: int, fail_every: int = 0) -> web.Application:
    served = 0
    # How late the server itself wrote each token against its schedule: the part of the client's measured
    # error that is not the client's (GET /lateness, POST /lateness/reset).
    first_token_late, token_late = LatencyHistogram(), LatencyHistogram()

    async def serve(request: web.Request) -> web.StreamResponse:
        nonlocal served
        arrived = asyncio.get_running_loop().time()
        body = await request.json()
        served += 1
        if fail_every and served % fail_every == 0:
            return web.json_response({"error": {"message": "scheduled failure"}}, status=500)
        chat = request.path.endswith("/chat/completions")
        text = body["messages"][-1]["content"] if chat else body["prompt"]
        prompt_tokens = len(str(text).split())
        count = min(int(body.get("max_tokens") or tokens), tokens)
        if not body.get("stream"):
            await asyncio.sleep(max(ttft_ms + itl_ms * (count - 1), 0) / 1000)
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": count}
            return web.json_response({"choices": [{"index": 0, "text": "x"}], "usage": usage})
        frames = _frames(chat, count, prompt_tokens)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if ttft_ms == 0 and itl_ms == 0:
            await response.write(b"".join(frames))
        else:
            loop = asyncio.get_running_loop()
            first = 1 if chat else 0
            if chat:
                await response.write(frames[0])
            for i, frame in enumerate(frames[first : first + count]):
                delay = arrived + (ttft_ms + i * itl_ms) / 1000 - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                (token_late if i else first_token_late).record_seconds([max(-delay, 0.0)])
                await response.write(frame)
            await response.write(b"".join(frames[first + count :]))
        await response.write_eof()
        return response

    async def lateness(request: web.Request) -> web.Response:
        nonlocal first_token_late, token_late
        summary = {
            "first_token_late_ms": first_token_late.summary_ms(),
            "token_late_ms": token_late.summary_ms(),
        }
        if request.method == "POST":
            first_token_late, token_late = LatencyHistogram(), LatencyHistogram()
        return web.json_response(summary)

    app = web.Application()
    app.router.add_get("/lateness", lateness)
    app.router.add_post("/lateness/reset", lateness)
    app.router.add_post("/v1/chat/completions", serve)
    app.router.add_post("/v1/completions", serve)
    return app


async def _serve(args: argparse.Namespace) -> None:
    runner = web.AppRunner(create_app(ttft_ms=args.ttft_ms, itl_ms=args.itl_ms, tokens=args.tokens, fail_every=args.fail_every),
                           access_log=None)  # fmt: skip
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.port, backlog=1024)
    await site.start()
    port = next(a[1] for a in runner.addresses if isinstance(a, tuple))
    print(f"PORT {port}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ttft-ms", type=float, default=0.0)
    parser.add_argument("--itl-ms", type=float, default=0.0)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--fail-every", type=int, default=0, help="answer every Nth request with HTTP 500")
    parser.add_argument("--cpu", type=int, default=None, help="pin the server to this CPU")
    args = parser.parse_args()
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
