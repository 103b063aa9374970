"""The web server images serve by default: a container of an `nginx` (or `httpd`) image that sets no command
answers HTTP on port 80 with the image's default page, so `kubectl port-forward pod/web 8080:80` and `curl`
from another pod see what they would on a real cluster. One local server plays every such container."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

from aiohttp import web

NGINX_VERSION = "1.27.3"
_WELCOME = """<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
<style>
html { color-scheme: light dark; }
body { width: 35em; margin: 0 auto;
font-family: Tahoma, Verdana, Arial, sans-serif; }
</style>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>

<p>For online documentation and support please refer to
<a href="http://nginx.org/">nginx.org</a>.<br/>
Commercial support is available at
<a href="http://nginx.com/">nginx.com</a>.</p>

<p><em>Thank you for using nginx.</em></p>
</body>
</html>
"""
_NOT_FOUND = (
    "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>"
    f"\r\n<hr><center>nginx/{NGINX_VERSION}</center>\r\n</body>\r\n</html>\r\n"
)
HTTPD_PAGE = "<html><body><h1>It works!</h1></body></html>\n"


def serves_default_page(container: Mapping[str, Any], port: int) -> bool:
    image = str(container.get("image") or "").rsplit("/", 1)[-1]
    return port == 80 and not container.get("command") and image.split(":")[0] in ("nginx", "httpd")


class DefaultWebServer:
    def __init__(self) -> None:
        self.port: int | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        headers = {"Server": f"nginx/{NGINX_VERSION}"}
        if request.path in ("/", "/index.html"):
            return web.Response(text=_WELCOME, content_type="text/html", headers=headers)
        return web.Response(status=404, text=_NOT_FOUND, content_type="text/html", headers=headers)

    async def serve(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(getattr(site, "_server").sockets[0].getsockname()[1])  # noqa: B009
        try:
            await asyncio.Event().wait()
        finally:
            with contextlib.suppress(Exception):
                await runner.cleanup()
