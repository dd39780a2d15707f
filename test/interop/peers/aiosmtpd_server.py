"""An aiosmtpd server for smtpkit's interop tests (run with Debian's /usr/bin/python3).

Usage: aiosmtpd_server.py CONFIG.json

Binds the configured loopback port (0 = any), prints "READY <port>" on stdout, and stores every
accepted message in config["messagesDir"] as NNNNNN.eml (the content bytes exactly as received,
after dot-unstuffing) and NNNNNN.json (its envelope), the .json written last so a reader never sees
half a message. Exits on SIGTERM/SIGINT, or when stdin reaches EOF (the test process went away).
"""

import asyncio
import hmac
import json
import os
import secrets
import signal
import ssl
import sys
import warnings

from aiosmtpd.smtp import DATA_SIZE_DEFAULT, MISSING, SMTP, AuthResult, LoginPassword, auth_mechanism

# aiosmtpd 1.4 itself still sets the deprecated Session.login_data after every AUTH.
warnings.filterwarnings("ignore", message="Session.login_data is deprecated")

# The mechanisms this script can offer: aiosmtpd 1.4 has PLAIN and LOGIN built in; CRAM-MD5 is ours.
KNOWN_MECHANISMS = {"PLAIN", "LOGIN", "CRAM-MD5"}


def tls_context(files):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(files["cert"], files["key"])
    return context


class Recorder:
    """aiosmtpd handler: per-recipient replies, CRAM-MD5, and storing what arrives."""

    def __init__(self, config):
        self.directory = config["messagesDir"]
        self.hostname = config["hostname"]
        self.rcpt_replies = {k.lower(): v for k, v in (config.get("rcptReplies") or {}).items()}
        auth = config.get("auth") or {}
        self.users = auth.get("users") or {}
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.rcpt_replies.get(address.lower())
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        base = os.path.join(self.directory, "%06d" % self.count)
        with open(base + ".eml", "wb") as f:
            f.write(envelope.original_content)
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        transport = server.transport
        record = {
            "mailFrom": envelope.mail_from,
            "rcptTos": envelope.rcpt_tos,
            "mailOptions": envelope.mail_options,
            "rcptOptions": envelope.rcpt_options,
            "heloName": session.host_name,
            "peer": session.peer[0] if session.peer else None,
            "tls": session.ssl is not None
            or (transport is not None and transport.get_extra_info("ssl_object") is not None),
            "authLogin": login.decode("utf-8", "replace") if isinstance(login, bytes) else login,
        }
        with open(base + ".json.tmp", "w") as f:
            json.dump(record, f)
        os.rename(base + ".json.tmp", base + ".json")
        return "250 2.0.0 OK: message %d stored" % self.count

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        expected = self.users.get(user)
        ok = expected is not None and hmac.compare_digest(expected.encode(), password.encode())
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    @auth_mechanism("CRAM-MD5")
    async def auth_CRAM_MD5(self, server, args):
        # RFC 2195: no initial response; the client answers "user hex(HMAC-MD5(password, challenge))".
        if len(args) > 1:
            await server.push("501 5.5.2 CRAM-MD5 takes no initial response")
            return AuthResult(success=False, handled=True)
        challenge = ("<%s@%s>" % (secrets.token_hex(8), self.hostname)).encode()
        response = await server.challenge_auth(challenge)
        if response is MISSING:
            return AuthResult(success=False, handled=True)
        try:
            user, digest = response.decode("utf-8").rsplit(" ", 1)
        except (UnicodeDecodeError, ValueError):
            await server.push("501 5.5.2 Malformed CRAM-MD5 response")
            return AuthResult(success=False, handled=True)
        password = self.users.get(user)
        ok = password is not None and hmac.compare_digest(
            hmac.new(password.encode(), challenge, "md5").hexdigest(), digest.lower()
        )
        return AuthResult(success=ok, handled=False, auth_data=LoginPassword(user.encode(), b""))


def smtp_factory(config, handler, loop):
    starttls = tls_context(config["starttls"]) if config.get("starttls") else None
    implicit = config.get("implicitTls") is not None
    auth = config.get("auth")
    kwargs = dict(
        hostname=config["hostname"],
        tls_context=starttls,
        require_starttls=bool(config.get("requireStarttls")),
        enable_SMTPUTF8=bool(config.get("smtputf8")),
        data_size_limit=config.get("dataSizeLimit", DATA_SIZE_DEFAULT),
        decode_data=False,
        loop=loop,
    )
    if auth is not None:
        offered = set(auth.get("mechanisms") or KNOWN_MECHANISMS)
        kwargs.update(
            authenticator=handler.authenticate,
            auth_exclude_mechanism=sorted(KNOWN_MECHANISMS - offered),
            auth_required=bool(auth.get("required")),
            # aiosmtpd only knows TLS it negotiated itself (STARTTLS); under implicit TLS the whole
            # connection is encrypted, so its "require TLS for AUTH" check must not apply.
            auth_require_tls=bool(auth.get("requireTls", True)) and not implicit,
        )
    else:
        kwargs.update(auth_exclude_mechanism=["CRAM-MD5"])
    return lambda: SMTP(handler, **kwargs)


async def serve(config):
    loop = asyncio.get_running_loop()
    handler = Recorder(config)
    implicit = tls_context(config["implicitTls"]) if config.get("implicitTls") else None
    server = await loop.create_server(
        smtp_factory(config, handler, loop), host=config["host"], port=config.get("port") or 0, ssl=implicit
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)

    async def watch_stdin():
        await stdin.read()
        stop.set()

    watcher = asyncio.ensure_future(watch_stdin())
    print("READY %d" % server.sockets[0].getsockname()[1], flush=True)
    await stop.wait()
    watcher.cancel()
    server.close()


def main():
    with open(sys.argv[1]) as f:
        config = json.load(f)
    asyncio.run(serve(config))


if __name__ == "__main__":
    main()
