"""agora_adapter: the plumbing of an Agora remote adapter (protocol v1), on
Python 3.11's standard library alone. One file: copy it next to your adapter
(`agora adapter init --lang python` does).

You write the backend work as an object with methods; this module does the
rest of https://github.com/agora-osb/agora/blob/main/docs/adapter-protocol.md:
signature, timestamp and replay checks, routing, JSON, the protocol's error
codes, and capabilities declared from the methods you wrote.

    class Service:
        def provision(self, instance_id, req): ...            # required
        def deprovision(self, instance_id, req): ...          # required
        def bind(self, instance_id, binding_id, req): ...     # required
        def unbind(self, instance_id, binding_id, req): ...   # required
        def update(self, instance_id, req): ...               # optional: capability "update"
        def inspect(self, instance_id, req): ...              # optional: capability "inspect"
        def status(self, instance_id, operation, req): ...    # optional: capability "status"

    agora_adapter.serve(Service(), name="files", version="1.0.0", listen="127.0.0.1:9091", secret=secret)

`req` is the whole request body as a dict, untouched, fields Agora adds
within v1 included (for the GET calls, inspect and status, the query
parameters, with `plan` as {"id", "name"} and inspect's `receipt` decoded).
Return the result as a dict (None is {}); it is sent as it is, with
`"pending": false` added to a mutating call's result that does not say.
Raise NotFound, AlreadyExists, InvalidParameters, NotSupported, Terminal or
Internal for the protocol's error codes; any other exception is answered
`500 internal` (Agora retries it). Messages reach Agora's logs and, for
InvalidParameters, the app developer: never put a secret in one.

versions(req) reads a provision's or update's maintenance_info (v1.1):
(current, requested) versions, None where absent; they differ on an upgrade.
at_least(version, "1.1.0") tells whether a version includes 1.1.0's work.
"""

import argparse
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import shutil
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

PROTOCOL = "agora.adapter/v1"
MINOR = 1  # v1.1: provision and update carry maintenance_info (see versions())
MAX_SKEW = 300  # seconds a timestamp may be off; also how long signatures are remembered
MAX_BODY = 1 << 20  # requests are small JSON documents
REQUIRED = ("provision", "deprovision", "bind", "unbind")
OPTIONAL = ("update", "status", "inspect")  # each one a capability of the same name
KINDS = ("provision", "update", "deprovision", "bind", "unbind")

log = logging.getLogger("agora_adapter")


class AdapterError(Exception):
    """An answer with the protocol's error body {"error": code, "message": message}."""

    status, code = 500, "internal"

    def __init__(self, message):
        super().__init__(message)
        self.message = str(message)


class NotFound(AdapterError):
    """The instance or binding does not exist (Agora counts it as success for deprovision and unbind)."""

    status, code = 404, "not_found"


class AlreadyExists(AdapterError):
    """A conflicting resource that this request did not create."""

    status, code = 409, "already_exists"


class InvalidParameters(AdapterError):
    """Parameters the backend cannot honour; the message is shown to the app developer as it is."""

    status, code = 400, "invalid_parameters"


class NotSupported(AdapterError):
    """This operation or change is not offered."""

    status, code = 501, "not_supported"


class Terminal(AdapterError):
    """Retrying cannot help: Agora fails the operation at once."""

    status, code = 422, "terminal"


class Internal(AdapterError):
    """A failure that may pass: Agora retries."""

    status, code = 500, "internal"


class Unauthorized(AdapterError):
    """The signature, timestamp or replay check failed."""

    status, code = 401, "unauthorized"


# ---- signatures -----------------------------------------------------------


def string_to_sign(method, target, timestamp, nonce, body):
    """The five lines both sides feed to HMAC-SHA256; target is the path as sent, with its query."""
    return "\n".join([method, target, timestamp, nonce, hashlib.sha256(body).hexdigest()])


def signature(secret, method, target, timestamp, nonce, body):
    """The X-Agora-Signature header's value: "v1=" and the lowercase hex HMAC-SHA256."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "v1=" + hmac.new(key, string_to_sign(method, target, timestamp, nonce, body).encode(), hashlib.sha256).hexdigest()


class Verifier:
    """Checks requests in the protocol's order and remembers accepted signatures, so a captured request cannot be sent again."""

    def __init__(self, secret, clock=time.time):
        if not secret:
            raise ValueError("agora_adapter: the secret shared with Agora is empty")
        self.secret, self.clock = secret, clock
        self.seen, self.lock, self.next_prune = {}, threading.Lock(), 0.0

    def verify(self, method, target, timestamp, nonce, sig, body):
        """Raise Unauthorized unless the request is signed, fresh, authentic and new."""
        if not (timestamp and nonce and sig):
            raise Unauthorized("missing signature: the X-Agora-Timestamp, X-Agora-Nonce and X-Agora-Signature headers are required")
        now = self.clock()
        if not re.fullmatch(r"[0-9]{1,19}", timestamp) or abs(now - int(timestamp)) > MAX_SKEW:
            raise Unauthorized(f"stale timestamp: X-Agora-Timestamp is more than {MAX_SKEW}s away from the adapter's clock; check both clocks")
        want = signature(self.secret, method, target, timestamp, nonce, body)
        if not hmac.compare_digest(want.encode(), sig.encode()):
            raise Unauthorized("bad signature: check that Agora and the adapter share the same secret")
        # Only authentic requests reach the replay memory, so forged ones cannot fill it.
        with self.lock:
            if now >= self.next_prune:  # at most once a second: it holds ten minutes of requests at most
                self.next_prune = now + 1
                for old in [s for s, until in self.seen.items() if until < now]:
                    del self.seen[old]
            if sig in self.seen:
                raise Unauthorized("replayed request: this signature was already used")
            self.seen[sig] = int(timestamp) + MAX_SKEW


# ---- routing --------------------------------------------------------------


class Adapter:
    """The protocol over a handlers object, independent of any HTTP server: handle() answers one request."""

    def __init__(self, handlers, *, name, version, secret, clock=time.time):
        missing = [m for m in REQUIRED if not callable(getattr(handlers, m, None))]
        if missing:
            raise TypeError(f"agora_adapter: {type(handlers).__name__} has no {', '.join(missing)} method: every adapter provisions, deprovisions, binds and unbinds")
        self.handlers, self.name, self.version = handlers, name, version
        self.capabilities = [c for c in OPTIONAL if callable(getattr(handlers, c, None))]
        self.verifier = Verifier(secret, clock)

    def handle(self, method, target, headers, body):
        """Answer one request: (status, JSON-able dict). headers needs only .get(name)."""
        try:
            self.verifier.verify(method, target, headers.get("X-Agora-Timestamp", ""), headers.get("X-Agora-Nonce", ""),
                                 headers.get("X-Agora-Signature", ""), body)
            return self.route(method, target, body)
        except AdapterError as e:
            if e.status >= 500 and e.status != 501:  # 501 is an answer, not a fault
                log.warning("%s %s (request %s): %s %s", method, urlsplit(target).path, headers.get("X-Agora-Request-Id", "-"), e.code, e.message)
            return e.status, {"error": e.code, "message": e.message}
        except Exception as e:  # a bug or a full disk: Agora retries later
            log.exception("%s %s (request %s) failed", method, urlsplit(target).path, headers.get("X-Agora-Request-Id", "-"))
            return 500, {"error": "internal", "message": f"{type(e).__name__}: {e}"}

    def route(self, method, target, body):
        url = urlsplit(target)
        # Split before decoding: an ID may hold an encoded "/".
        parts = [unquote(p) for p in url.path.split("/")]
        if parts[:2] != ["", "v1"] or "" in parts[2:]:
            raise NotSupported(f"{method} {url.path} is not part of protocol v1")
        parts = parts[2:]
        if parts == ["capabilities"] and method == "GET":
            return 200, {"protocol": PROTOCOL, "minor": MINOR, "name": self.name, "version": self.version, "capabilities": self.capabilities}
        call = None
        if len(parts) == 2 and parts[0] == "instances":
            call = {"GET": "inspect", "PUT": "provision", "PATCH": "update", "DELETE": "deprovision"}.get(method)
        elif len(parts) == 4 and parts[0] == "instances" and parts[2] == "bindings":
            call = {"PUT": "bind", "DELETE": "unbind"}.get(method)
        elif len(parts) == 4 and parts[0] == "instances" and parts[2] == "operations" and method == "GET":
            call = "status"
        if call is None:
            raise NotSupported(f"{method} {url.path} is not part of protocol v1")
        if call in OPTIONAL and call not in self.capabilities:
            raise NotSupported(f"this adapter does not declare the {call} capability")
        ids = [parts[1]] + parts[3:]
        req = query_request(call, url.query) if method == "GET" else body_request(body)
        result = getattr(self.handlers, call)(*ids, req)
        if result is None:
            result = {}
        if not isinstance(result, dict):
            raise Internal(f"the adapter's {call} returned {type(result).__name__}, not a dict")
        if method != "GET":
            result = {"pending": False, **result}
        return (202 if result.get("pending") else 200), result


def body_request(body):
    try:
        req = json.loads(body or b"{}")
    except ValueError as e:
        raise Terminal(f"the request body is not JSON: {e}") from None
    if not isinstance(req, dict):
        raise Terminal("the request body is not a JSON object")
    return req


def query_request(call, query):
    req = dict(parse_qsl(query, keep_blank_values=True))
    req["plan"] = {"id": req.get("plan_id", ""), "name": req.get("plan_name", "")}
    if call == "status" and req.get("kind") not in KINDS:
        raise Terminal(f"kind {req.get('kind')!r} is not one of {', '.join(KINDS)}")
    if call == "inspect" and "receipt" in req:
        try:
            req["receipt"] = json.loads(req["receipt"])
        except ValueError:
            req["receipt"] = None
        if not isinstance(req["receipt"], dict):
            raise Terminal("receipt must be a JSON object of strings")
    return req


# ---- serving --------------------------------------------------------------


class _HTTPHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every reply has a Content-Length
    disable_nagle_algorithm = True  # else headers and body wait 40ms for a delayed ACK

    def answer(self):
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY or "chunked" in self.headers.get("Transfer-Encoding", ""):
            self.close_connection = True  # the body cannot be skipped safely
            return self.reply(413 if length > MAX_BODY else 400, {"error": "terminal", "message": f"send a Content-Length of at most {MAX_BODY} bytes"})
        status, doc = self.server.adapter.handle(self.command, self.path, self.headers, self.rfile.read(length))
        self.reply(status, doc)

    do_GET = do_PUT = do_PATCH = do_DELETE = do_POST = answer

    def reply(self, status, doc):
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True


def make_server(handlers, *, name, version, listen="127.0.0.1:9091", secret=None, clock=time.time):
    """An HTTP server for handlers, bound but not serving yet (port 0 picks a free port: see server_port)."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    adapter = Adapter(handlers, name=name, version=version, secret=secret, clock=clock)
    server_class = type("_Server6", (_Server,), {"address_family": socket.AF_INET6}) if ":" in host else _Server
    server = server_class((host, int(port)), _HTTPHandler)
    server.adapter = adapter
    return server


def serve(handlers, *, name, version, listen="127.0.0.1:9091", secret=None):
    """Serve handlers until interrupted. The first line on stdout is "listening on http://HOST:PORT"."""
    if not secret:
        raise SystemExit("agora_adapter: the secret shared with Agora is required: --secret or AGORA_ADAPTER_SECRET")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    server = make_server(handlers, name=name, version=version, listen=listen, secret=secret)
    host = server.server_address[0]
    print(f"listening on http://{'[' + host + ']' if ':' in host else host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def arguments(description=None, listen="127.0.0.1:9091"):
    """An argument parser with --listen and --secret (default $AGORA_ADAPTER_SECRET); add your own options."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--listen", default=listen, help=f"host:port to serve on (default {listen}; port 0 picks a free one)")
    p.add_argument("--secret", default=os.environ.get("AGORA_ADAPTER_SECRET"),
                   help="the secret shared with Agora (default $AGORA_ADAPTER_SECRET, which keeps it out of ps)")
    return p


# ---- maintenance_info (v1.1) -----------------------------------------------


def versions(req):
    """(current, requested): the maintenance_info versions of a provision or update body, None where
    absent. They differ on an upgrade: do that version's work, idempotently (a repeat may follow)."""
    mi = req.get("maintenance_info") or {}
    return ((mi.get("current") or {}).get("version"), (mi.get("requested") or {}).get("version"))


def at_least(version, minimum):
    """Whether semantic version `version` (None: no version) is `minimum` or later, by major.minor.patch;
    for an adapter doing each version's work up to the requested one."""
    core = lambda v: tuple(int(p) for p in re.split(r"[-+]", v, maxsplit=1)[0].split("."))
    return version is not None and core(version) >= core(minimum)


# ---- idempotency helpers --------------------------------------------------

_SAFE_ID = re.compile(r"[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,254}")


def safe_id(value):
    """value, when it can name a file on its own (no "/", no "..", no dotfile); else Terminal."""
    if not _SAFE_ID.fullmatch(value):
        raise Terminal(f"id {value!r} cannot name a file")
    return value


def create_once(path, make):
    """Create-if-absent, atomically: the first call (among concurrent ones too, in any process)
    stores make()'s text at path; every call returns the text stored. For a token per binding,
    so a repeated bind returns the same credentials."""
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        pass
    # Write a private file, then link it into place: the link either wins
    # or finds the winner's complete file, never a half-written one.
    tmp = f"{path}.{secrets.token_hex(8)}.tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
        f.write(make())
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        os.remove(tmp)
    with open(path) as f:
        return f.read()


def remove(path):
    """Remove a file or a directory tree. False when it was not there (a repeat, or a concurrent twin, came first)."""
    if not os.path.lexists(path):
        return False
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)  # a twin removing the same tree is no error
        if os.path.lexists(path):
            shutil.rmtree(path)  # still there: raise the real reason
    else:
        try:
            os.remove(path)
        except FileNotFoundError:
            return False
    return True
