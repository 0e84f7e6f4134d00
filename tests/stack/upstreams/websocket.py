"""A stand-in for OMERO.server's websocket ports (Ice's ws and wss transports): an echo server on
4065 (ws) and 4066 (wss, with the certificate and key given as arguments). The message `whoami`
is answered with the request's path and X-Forwarded-For, as the server saw them."""

import asyncio
import json
import ssl
import sys

from websockets.asyncio.server import serve


async def echo(connection):
    async for message in connection:
        if message == "whoami":
            request = connection.request
            message = json.dumps({"path": request.path, "x-forwarded-for": request.headers.get("X-Forwarded-For")})
        await connection.send(message)


async def main(certificate, key):
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(certificate, key)
    async with serve(echo, "0.0.0.0", 4065), serve(echo, "0.0.0.0", 4066, ssl=tls):
        print("websocket stand-in listening on 4065 (ws) and 4066 (wss)", flush=True)
        await asyncio.Future()


asyncio.run(main(*sys.argv[1:3]))
