// The Python side of `SMTPSink`, written to the sink's temp directory at start.
// Kept as a string (not a .py file) so the test target has no unhandled resources.
// Needs `pip install aiosmtpd`.

enum SMTPSinkScript {
    static let source = #"""
"""SMTP sink for tests: aiosmtpd on 127.0.0.1, one JSON + .eml file per received message.

Prints "READY <port>" on stdout once it accepts connections. Exits at once when stdin reaches EOF
(the test process went away) or on SIGTERM/SIGINT.
"""
import argparse
import asyncio
import email
import email.policy
import json
import os
import signal
import socket
import ssl
import sys
import threading
import time
import uuid

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True, help="directory for received messages")
    p.add_argument("--tls", choices=["none", "starttls", "implicit"], default="none")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--require-starttls", action="store_true")
    p.add_argument("--auth-user")
    p.add_argument("--auth-password")
    p.add_argument("--auth-allow-plaintext", action="store_true")
    p.add_argument("--auth-required", action="store_true")
    p.add_argument("--silent", action="store_true", help="accept TCP connections but never speak")
    p.add_argument(
        "--misbehave",
        choices=["reject-greeting", "starttls-inject", "close-after-ehlo", "helo-only"],
        help="run a scripted, broken SMTP server instead of aiosmtpd",
    )
    return p.parse_args()


class Handler:
    def __init__(self, directory):
        self.directory = directory

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content
        if raw is None:
            raw = envelope.content if isinstance(envelope.content, bytes) else envelope.content.encode()
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        try:
            body = msg.get_content()
        except Exception as exc:  # noqa: BLE001
            body = "<undecodable body: %s>" % exc
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        headers = {}
        for name in msg.keys():
            if name.lower() not in headers:
                headers[name.lower()] = str(msg[name])
        login = None
        if session.authenticated and isinstance(session.auth_data, LoginPassword):
            login = session.auth_data.login.decode("utf-8", "replace")
        transport = server.transport
        tls = session.ssl is not None or (
            transport is not None and transport.get_extra_info("sslcontext") is not None
        )
        record = {
            "mailFrom": envelope.mail_from,
            "rcptTo": list(envelope.rcpt_tos),
            "from": str(msg.get("From", "")),
            "to": str(msg.get("To", "")),
            "subject": str(msg.get("Subject", "")),
            "body": body.replace("\r\n", "\n"),
            "headers": headers,
            "raw": raw.decode("utf-8", "replace"),
            "tls": bool(tls),
            "authenticatedAs": login,
        }
        name = "%020d-%s" % (time.time_ns(), uuid.uuid4().hex)
        eml = os.path.join(self.directory, name + ".eml")
        with open(eml + ".tmp", "wb") as f:
            f.write(raw)
        os.replace(eml + ".tmp", eml)
        path = os.path.join(self.directory, name + ".json")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.replace(path + ".tmp", path)
        return "250 2.0.0 Message accepted for delivery"


def make_authenticator(user, password):
    def authenticator(server, session, envelope, mechanism, auth_data):
        if (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        ):
            return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)

    return authenticator


async def misbehave(mode, reader, writer):
    """Tiny scripted server for protocol-error tests; never accepts a message."""
    try:
        if mode == "reject-greeting":
            writer.write(b"554 5.3.2 sink.test no service for you\r\n")
            await writer.drain()
            await reader.readline()
            return
        writer.write(b"220 sink.test ESMTP scripted\r\n")
        await writer.drain()
        while True:
            line = await reader.readline()
            if not line:
                return
            verb = line.strip().upper()
            if mode == "helo-only":
                # An old server: no EHLO, accepts (and discards) one message.
                if verb.startswith(b"EHLO"):
                    writer.write(b"502 5.5.2 EHLO not implemented\r\n")
                elif verb == b"DATA":
                    writer.write(b"354 end with .\r\n")
                    await writer.drain()
                    while (await reader.readline()) not in (b".\r\n", b""):
                        pass
                    writer.write(b"250 2.0.0 discarded\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    await writer.drain()
                    return
                else:
                    writer.write(b"250 ok\r\n")
            elif verb.startswith(b"EHLO"):
                if mode == "close-after-ehlo":
                    writer.write(b"421 4.3.2 sink.test shutting down\r\n")
                    await writer.drain()
                    return
                writer.write(b"250-sink.test\r\n250-STARTTLS\r\n250 8BITMIME\r\n")
            elif verb == b"STARTTLS":
                # Pipelines a plaintext reply behind the 220 (STARTTLS command injection).
                writer.write(b"220 2.0.0 go ahead\r\n250-sink.test\r\n250 AUTH PLAIN\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                return
            else:
                writer.write(b"502 5.5.1 not implemented\r\n")
            await writer.drain()
    finally:
        writer.close()


def watch_stdin():
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except Exception:  # noqa: BLE001
        pass
    os._exit(0)


def exit_now(*_):
    # Messages are written atomically, so there is nothing to clean up: exit at once.
    os._exit(0)


async def serve(args):
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, exit_now)
    # The parent may have spawned us with these blocked (inherited signal mask).
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    threading.Thread(target=watch_stdin, daemon=True).start()

    if args.misbehave:
        server = await asyncio.start_server(
            lambda r, w: misbehave(args.misbehave, r, w), host="127.0.0.1", port=0
        )
    elif args.silent:
        held = []

        async def hold(reader, writer):
            held.append(writer)
            await stop.wait()

        server = await asyncio.start_server(hold, host="127.0.0.1", port=0)
    else:
        context = None
        if args.tls != "none":
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(args.cert, args.key)
        kwargs = {"hostname": "sink.test", "ident": "wrenn-test-sink"}
        if args.tls == "starttls":
            kwargs["tls_context"] = context
            kwargs["require_starttls"] = args.require_starttls
        if args.auth_user is not None:
            kwargs["authenticator"] = make_authenticator(args.auth_user, args.auth_password or "")
            kwargs["auth_required"] = args.auth_required
            kwargs["auth_require_tls"] = not (args.auth_allow_plaintext or args.tls == "implicit")
        handler = Handler(args.dir)

        def factory():
            return SMTP(handler, loop=loop, **kwargs)

        server = await loop.create_server(
            factory,
            host="127.0.0.1",
            port=0,
            ssl=context if args.tls == "implicit" else None,
            family=socket.AF_INET,
        )
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write("READY %d\n" % port)
    sys.stdout.flush()
    await stop.wait()
    server.close()


def main():
    args = parse_args()
    os.makedirs(args.dir, exist_ok=True)
    asyncio.run(serve(args))
    os._exit(0)


if __name__ == "__main__":
    main()
"""#
}
