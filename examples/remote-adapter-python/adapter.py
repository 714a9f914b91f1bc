#!/usr/bin/env python3
"""An Agora remote adapter (protocol v1) on the standard library alone.

A directory per instance under --root; a random token per binding in
<dir>/.tokens/<binding_id>. See docs/adapter-protocol.md.
"""
import argparse, hashlib, hmac, json, os, re, secrets, shutil, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

SKEW = 300  # seconds a timestamp may be off; also how long signatures are remembered
ID = r"([A-Za-z0-9_~-][A-Za-z0-9._~-]{0,254})"  # one safe path element: no "/", "..", dotfiles
ROUTES = [(m, re.compile(p + "$"), f) for m, p, f in [
    ("GET", "/v1/capabilities", "capabilities"),
    ("GET", f"/v1/instances/{ID}", "inspect"),
    ("PUT", f"/v1/instances/{ID}", "provision"),
    ("PATCH", f"/v1/instances/{ID}", "update"),
    ("DELETE", f"/v1/instances/{ID}", "deprovision"),
    ("PUT", f"/v1/instances/{ID}/bindings/{ID}", "bind"),
    ("DELETE", f"/v1/instances/{ID}/bindings/{ID}", "unbind"),
]]


class Fail(Exception):
    """Fail(status, code, message): answered as the protocol's error body."""


class Adapter(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every reply has a Content-Length
    disable_nagle_algorithm = True  # else headers and body wait 40ms for a delayed ACK

    def route(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            self.verify(body)
            path = unquote(urlsplit(self.path).path)
            for method, pattern, name in ROUTES:
                match = pattern.match(path)
                if match and method == self.command:
                    return self.reply(200, getattr(self, name)(json.loads(body or b"{}"), *match.groups()))
            raise Fail(501, "not_supported", f"{self.command} {path} is not part of protocol v1")
        except Fail as f:
            self.reply(f.args[0], {"error": f.args[1], "message": f.args[2]})
        except json.JSONDecodeError as e:
            self.reply(400, {"error": "terminal", "message": f"the body is not JSON: {e}"})
        except Exception as e:  # a bug or a full disk: Agora retries later
            self.reply(500, {"error": "internal", "message": f"{type(e).__name__}: {e}"})

    do_GET = do_PUT = do_PATCH = do_DELETE = route

    def verify(self, body):
        """Headers, timestamp window, signature, then replay (docs/adapter-protocol.md)."""
        ts, nonce, sig = (self.headers.get("X-Agora-" + h, "") for h in ("Timestamp", "Nonce", "Signature"))
        if not (ts and nonce and sig.startswith("v1=")):
            raise Fail(401, "unauthorized", "missing signature")
        if not ts.isdigit() or abs(time.time() - int(ts)) > SKEW:
            raise Fail(401, "unauthorized", "stale timestamp: check both clocks")
        signed = "\n".join([self.command, self.path, ts, nonce, hashlib.sha256(body).hexdigest()])
        want = hmac.new(self.server.secret, signed.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want.encode(), sig[3:].encode()):
            raise Fail(401, "unauthorized", "bad signature")
        with self.server.lock:  # forget what the timestamp check now rejects anyway
            now, seen = time.time(), self.server.seen
            for old in [s for s, until in seen.items() if until < now]:
                del seen[old]
            if sig in seen:
                raise Fail(401, "unauthorized", "replayed request")
            seen[sig] = int(ts) + SKEW

    def reply(self, status, doc):
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def instance(self, iid):
        path = os.path.join(self.server.root, iid)
        if not os.path.isdir(path):
            raise Fail(404, "not_found", f"instance {iid} not found")
        return path

    def capabilities(self, req):
        return {"protocol": "agora.adapter/v1", "name": "files-py", "version": "1.0.0", "capabilities": ["update", "inspect"]}

    def provision(self, req, iid):
        if req.get("parameters"):
            raise Fail(400, "invalid_parameters", "this service takes no parameters")
        path = os.path.join(self.server.root, iid)
        os.makedirs(os.path.join(path, ".tokens"), mode=0o700, exist_ok=True)  # a repeat succeeds
        return {"metadata": {"labels": {"path": path}}, "pending": False}

    def inspect(self, req, iid):
        return {"exists": os.path.isdir(os.path.join(self.server.root, iid)), "metadata": {}}

    def update(self, req, iid):
        if req.get("parameters"):
            raise Fail(400, "invalid_parameters", "this service takes no parameters")
        self.instance(iid)
        return {"metadata": {}, "pending": False}

    def deprovision(self, req, iid):
        try:
            shutil.rmtree(self.instance(iid))
        except FileNotFoundError:
            pass  # a concurrent repeat removed it first: gone is what was asked
        return {"pending": False}

    def bind(self, req, iid, bid):
        path = self.instance(iid)
        token_file = os.path.join(path, ".tokens", bid)
        # Write, then link into place: a repeat (even a concurrent one)
        # returns the first token, complete, instead of a second one.
        tmp = f"{token_file}.{secrets.token_hex(8)}.tmp"
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(secrets.token_urlsafe(32))
        try:
            os.link(tmp, token_file)
        except FileExistsError:
            pass
        finally:
            os.remove(tmp)
        with open(token_file) as f:
            return {"credentials": {"path": path, "token": f.read()}, "pending": False}

    def unbind(self, req, iid, bid):
        try:
            os.remove(os.path.join(self.instance(iid), ".tokens", bid))
        except FileNotFoundError:
            raise Fail(404, "not_found", f"binding {bid} not found") from None
        return {"pending": False}


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--listen", default="127.0.0.1:9091")
    p.add_argument("--secret", default=os.environ.get("AGORA_ADAPTER_SECRET"), help="default $AGORA_ADAPTER_SECRET")
    p.add_argument("--root", default="/tmp/agora-files")
    args = p.parse_args()
    if not args.secret:
        p.error("--secret (or AGORA_ADAPTER_SECRET) is required")
    host, port = args.listen.rsplit(":", 1)
    os.makedirs(args.root, mode=0o700, exist_ok=True)
    server = ThreadingHTTPServer((host, int(port)), Adapter)
    server.secret, server.root = args.secret.encode(), os.path.abspath(args.root)
    server.seen, server.lock = {}, threading.Lock()
    print(f"listening on http://{host}:{server.server_port}", flush=True)  # port 0 picks a free one
    server.serve_forever()


if __name__ == "__main__":
    main()
