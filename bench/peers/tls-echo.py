# SPDX-License-Identifier: MIT
"""tls-echo.py: the asyncio peer of the TLS benchmarks (bench/tls.sh): a
persistent TLS echo server on a plain asyncio Protocol (no uvloop), the
way the standard library does it: loop.create_server(ssl=context).

    python3 bench/peers/tls-echo.py --port P --cert FILE --key FILE

The context is ssl.SSLContext(PROTOCOL_TLS_SERVER) with the certificate
and key; the TLS 1.3 cipher suites and groups come from OPENSSL_CONF, which
bench/tls.sh sets for every server alike. Flow control as in the C peers:
pause_writing stops reading until the write buffer drains.
"""
import argparse
import asyncio
import signal
import ssl


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def pause_writing(self):
        self.transport.pause_reading()

    def resume_writing(self):
        self.transport.resume_reading()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    a = ap.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(a.cert, a.key)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set_result, None)
    server = await loop.create_server(Echo, "127.0.0.1", a.port, ssl=ctx, backlog=4096)
    async with server:
        await stop


asyncio.run(main())
