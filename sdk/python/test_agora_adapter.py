"""Tests of agora_adapter: python3 -m unittest discover -s sdk/python (go test ./sdk runs them)."""

import json
import os
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

import agora_adapter as agora

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "..", "..", "docs", "signing-vectors.json"), encoding="utf-8") as f:
    VECTORS = json.load(f)
SECRET = "sdk-test-secret"
NOW = 1732476000


def vector(name):
    return next(v for v in VECTORS["vectors"] if v["name"] == name)


def signed(method, target, body=b"", secret=SECRET, ts=NOW, nonce=None):
    nonce = nonce or os.urandom(16).hex()
    return {"X-Agora-Timestamp": str(ts), "X-Agora-Nonce": nonce,
            "X-Agora-Signature": agora.signature(secret, method, target, str(ts), nonce, body), "X-Agora-Request-Id": "rid-1"}


class Recorder:
    """Handlers that record their calls and return what the test says."""

    def __init__(self, result=None, error=None):
        self.calls, self.result, self.error = [], result, error

    def call(self, name, *args):
        self.calls.append((name,) + args)
        if self.error:
            raise self.error
        return self.result

    def provision(self, iid, req): return self.call("provision", iid, req)
    def deprovision(self, iid, req): return self.call("deprovision", iid, req)
    def bind(self, iid, bid, req): return self.call("bind", iid, bid, req)
    def unbind(self, iid, bid, req): return self.call("unbind", iid, bid, req)


class Full(Recorder):
    def update(self, iid, req): return self.call("update", iid, req)
    def inspect(self, iid, req): return self.call("inspect", iid, req)
    def status(self, iid, op, req): return self.call("status", iid, op, req)


def adapter(handlers=None, clock=lambda: NOW):
    return agora.Adapter(handlers or Full(), name="t", version="1", secret=SECRET, clock=clock)


def call(a, method, target, body=b""):
    return a.handle(method, target, signed(method, target, body), body)


class SigningVectors(unittest.TestCase):
    def test_each_vector_signs_and_verifies_once(self):
        for v in VECTORS["vectors"]:
            with self.subTest(v["name"]):
                body = v["body"].encode()
                self.assertEqual(agora.string_to_sign(v["method"], v["target"], v["timestamp"], v["nonce"], body), v["string_to_sign"])
                self.assertEqual(agora.signature(v["secret"], v["method"], v["target"], v["timestamp"], v["nonce"], body), v["signature"])
                verifier = agora.Verifier(v["secret"], clock=lambda: int(v["timestamp"]))
                verifier.verify(v["method"], v["target"], v["timestamp"], v["nonce"], v["signature"], body)
                with self.assertRaisesRegex(agora.Unauthorized, "replayed"):
                    verifier.verify(v["method"], v["target"], v["timestamp"], v["nonce"], v["signature"], body)

    def test_must_reject(self):
        for c in VECTORS["must_reject"]:
            with self.subTest(c["name"]):
                v = vector(c["request"])
                verifier = agora.Verifier(v["secret"], clock=lambda: c["now"])
                with self.assertRaises(agora.Unauthorized):
                    verifier.verify(v["method"], v["target"], v["timestamp"], v["nonce"], c["signature"], v["body"].encode())
                self.assertEqual(verifier.seen, {}, "a rejected request entered the replay memory")

    def test_accept_at_boundary(self):
        for c in VECTORS["accept_at_boundary"]:
            with self.subTest(c["name"]):
                v = vector(c["request"])
                agora.Verifier(v["secret"], clock=lambda: c["now"]).verify(
                    v["method"], v["target"], v["timestamp"], v["nonce"], v["signature"], v["body"].encode())

    def test_routes_decode_the_vectors_ids(self):
        h = Full(result={})
        a = agora.Adapter(h, name="t", version="1", secret=SECRET, clock=lambda: NOW)
        for v in VECTORS["vectors"]:
            if v.get("binding_id") and v["method"] == "PUT":
                status, _ = call(a, v["method"], v["target"], v["body"].encode())
                self.assertEqual(status, 200)
                self.assertEqual(h.calls[-1][:3], ("bind", v["instance_id"], v["binding_id"]))


class Verification(unittest.TestCase):
    def test_order_and_reasons(self):
        a = adapter()
        for headers, reason in [
            ({}, "missing signature"),
            (signed("GET", "/v1/capabilities", ts=NOW - 301), "stale timestamp"),
            ({**signed("GET", "/v1/capabilities"), "X-Agora-Timestamp": "１７３２４７６０００"}, "stale timestamp"),
            (signed("GET", "/v1/capabilities", secret="other"), "bad signature"),
            (signed("GET", "/v1/capabilities?x=1"), "bad signature"),
        ]:
            status, doc = a.handle("GET", "/v1/capabilities", headers, b"")
            self.assertEqual((status, doc["error"]), (401, "unauthorized"), reason)
            self.assertIn(reason, doc["message"])
        self.assertEqual(a.verifier.seen, {})

    def test_replay_across_routes_and_forgetting(self):
        clock = [NOW]
        a = adapter(clock=lambda: clock[0])
        headers = signed("GET", "/v1/capabilities")
        self.assertEqual(a.handle("GET", "/v1/capabilities", headers, b"")[0], 200)
        self.assertEqual(a.handle("GET", "/v1/capabilities", headers, b"")[1]["message"], "replayed request: this signature was already used")
        clock[0] = NOW + 301
        self.assertIn("stale", a.handle("GET", "/v1/capabilities", headers, b"")[1]["message"])
        a.handle("GET", "/v1/capabilities", signed("GET", "/v1/capabilities", ts=NOW + 301), b"")
        self.assertEqual(len(a.verifier.seen), 1, "expired signatures are not forgotten")

    def test_an_empty_secret_is_refused_at_start(self):
        with self.assertRaises(ValueError):
            agora.Adapter(Full(), name="t", version="1", secret="")


class Routing(unittest.TestCase):
    def test_capabilities_follow_the_handlers(self):
        for handlers, caps in [(Recorder(), []), (Full(), ["update", "status", "inspect"])]:
            status, doc = call(adapter(handlers), "GET", "/v1/capabilities")
            self.assertEqual((status, doc), (200, {"protocol": "agora.adapter/v1", "minor": 1, "name": "t", "version": "1", "capabilities": caps}))

    def test_missing_required_handlers_are_named_at_start(self):
        class Half:
            def provision(self, iid, req): pass
        with self.assertRaisesRegex(TypeError, "deprovision, bind, unbind"):
            agora.Adapter(Half(), name="t", version="1", secret=SECRET)

    def test_every_route(self):
        body = json.dumps({"offering": "files", "plan": {"id": "p", "name": "small"}, "future_field": {"kept": True}}).encode()
        for method, target, want in [
            ("PUT", "/v1/instances/i-1", ("provision", "i-1")),
            ("PATCH", "/v1/instances/i-1", ("update", "i-1")),
            ("DELETE", "/v1/instances/i-1", ("deprovision", "i-1")),
            ("PUT", "/v1/instances/i-1/bindings/b-1", ("bind", "i-1", "b-1")),
            ("DELETE", "/v1/instances/i-1/bindings/b-1", ("unbind", "i-1", "b-1")),
        ]:
            h = Full(result={"metadata": {}, "expires_at": "2030-01-01T00:00:00Z"})
            status, doc = call(adapter(h), method, target, body)
            self.assertEqual(status, 200, doc)
            self.assertEqual(h.calls[0][:-1], want)
            self.assertEqual(h.calls[0][-1], json.loads(body), "the body must reach the handler whole")
            self.assertEqual(doc, {"pending": False, "metadata": {}, "expires_at": "2030-01-01T00:00:00Z"}, "results pass through")

    def test_get_calls_get_the_query(self):
        h = Full(result={"state": "succeeded"})
        status, doc = call(adapter(h), "GET", "/v1/instances/i-1/operations/op%2F1?kind=bind&binding_id=b-1&plan_id=p&plan_name=small&new=x")
        self.assertEqual((status, doc), (200, {"state": "succeeded"}))
        self.assertEqual(h.calls[0], ("status", "i-1", "op/1", {"kind": "bind", "binding_id": "b-1", "plan_id": "p", "plan_name": "small",
                                                                "new": "x", "plan": {"id": "p", "name": "small"}}))
        h = Full(result={"exists": True})
        status, doc = call(adapter(h), "GET", '/v1/instances/i-1?offering=f&receipt={"path":"/x"}')
        self.assertEqual((status, doc), (200, {"exists": True}))
        self.assertEqual(h.calls[0][2]["receipt"], {"path": "/x"})
        for bad in ["/v1/instances/i-1?receipt=[1]", "/v1/instances/i-1?receipt=nope"]:
            self.assertEqual(call(adapter(Full()), "GET", bad)[0], 422)
        self.assertEqual(call(adapter(Full()), "GET", "/v1/instances/i-1/operations/op?kind=bogus")[1]["error"], "terminal")

    def test_pending_answers_202(self):
        status, doc = call(adapter(Full(result={"pending": True, "operation": "op-1"})), "PUT", "/v1/instances/i-1", b"{}")
        self.assertEqual((status, doc), (202, {"pending": True, "operation": "op-1"}))

    def test_not_part_of_the_protocol(self):
        for method, target in [("POST", "/v1/instances/i-1"), ("GET", "/v2/capabilities"), ("GET", "/v1/instances//bindings/b"),
                               ("PUT", "/v1/instances/i/bindings"), ("GET", "/")]:
            status, doc = call(adapter(), method, target)
            self.assertEqual((status, doc["error"]), (501, "not_supported"), target)

    def test_optional_calls_without_their_handler(self):
        for method, target in [("PATCH", "/v1/instances/i-1"), ("GET", "/v1/instances/i-1"), ("GET", "/v1/instances/i-1/operations/o?kind=bind")]:
            status, doc = call(adapter(Recorder()), method, target)
            self.assertEqual((status, doc["error"]), (501, "not_supported"))
            self.assertIn("capability", doc["message"])

    def test_bad_bodies(self):
        for body in [b"{", b"[1]", b'"x"']:
            status, doc = call(adapter(), "PUT", "/v1/instances/i-1", body)
            self.assertEqual((status, doc["error"]), (422, "terminal"))


class Errors(unittest.TestCase):
    def test_each_code(self):
        for exc, status, code in [
            (agora.NotFound("gone"), 404, "not_found"),
            (agora.AlreadyExists("taken"), 409, "already_exists"),
            (agora.InvalidParameters("quota_mb must be at most 1000"), 400, "invalid_parameters"),
            (agora.NotSupported("no"), 501, "not_supported"),
            (agora.Terminal("never"), 422, "terminal"),
            (agora.Internal("later"), 500, "internal"),
            (OSError(28, "No space left on device"), 500, "internal"),
        ]:
            with self.subTest(code):
                with self.assertLogs("agora_adapter", "WARNING") if status == 500 else self.assertNoLogs("agora_adapter", "WARNING"):
                    got_status, doc = call(adapter(Full(error=exc)), "PUT", "/v1/instances/i-1", b"{}")
                self.assertEqual((got_status, doc["error"]), (status, code))
                self.assertIn(str(exc.args[-1]), doc["message"])

    def test_a_result_that_is_not_a_dict(self):
        with self.assertLogs("agora_adapter", "WARNING"):
            status, doc = call(adapter(Full(result=["x"])), "PUT", "/v1/instances/i-1", b"{}")
        self.assertEqual((status, doc["error"]), (500, "internal"))


class Versions(unittest.TestCase):
    def test_versions_of_a_body(self):
        up = {"maintenance_info": {"current": {"version": "1.0.0"}, "requested": {"version": "1.1.0", "description": "d"}}}
        self.assertEqual(agora.versions(up), ("1.0.0", "1.1.0"))
        self.assertEqual(agora.versions({"maintenance_info": {"requested": {"version": "1.0.0"}}}), (None, "1.0.0"))
        self.assertEqual(agora.versions({}), (None, None))

    def test_at_least(self):
        for version, minimum, want in [("1.1.0", "1.1.0", True), ("1.10.0", "1.2.0", True), ("1.0.9", "1.1.0", False),
                                       ("2.0.0+b.1", "1.1.0", True), (None, "1.0.0", False)]:
            self.assertEqual(agora.at_least(version, minimum), want, (version, minimum))

    def test_the_update_gets_maintenance_info_untouched(self):
        body = {"plan": {"id": "p", "name": "n"}, "maintenance_info": {"current": {"version": "1.0.0"}, "requested": {"version": "1.1.0"}}}
        handlers = Full()
        status, _ = call(adapter(handlers), "PATCH", "/v1/instances/i-1", json.dumps(body).encode())
        self.assertEqual(status, 200)
        self.assertEqual(agora.versions(handlers.calls[-1][-1]), ("1.0.0", "1.1.0"))


class Idempotency(unittest.TestCase):
    def test_create_once_under_concurrency(self):
        with tempfile.TemporaryDirectory() as d:
            path, got = os.path.join(d, "token"), []
            threads = [threading.Thread(target=lambda i=i: got.append(agora.create_once(path, lambda: f"t{i}"))) for i in range(16)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(len(set(got)), 1, got)
            self.assertEqual(os.listdir(d), ["token"], "temporary files left behind")
            self.assertEqual(agora.create_once(path, lambda: "other"), got[0])
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)

    def test_remove(self):
        with tempfile.TemporaryDirectory() as d:
            tree = os.path.join(d, "i-1")
            os.makedirs(os.path.join(tree, ".tokens"))
            open(os.path.join(tree, ".tokens", "b"), "w").close()
            self.assertTrue(agora.remove(tree))
            self.assertFalse(os.path.exists(tree))
            self.assertFalse(agora.remove(tree))
            self.assertFalse(agora.remove(os.path.join(d, "missing-file")))

    def test_safe_id(self):
        self.assertEqual(agora.safe_id("0b6f-x_y.z~"), "0b6f-x_y.z~")
        for bad in ["", "..", ".hidden", "a/b", "a\x00", "x" * 300]:
            with self.assertRaises(agora.Terminal):
                agora.safe_id(bad)


class OverHTTP(unittest.TestCase):
    def test_a_signed_request_through_the_server(self):
        server = agora.make_server(Full(result={"credentials": {"token": "t"}}), name="t", version="1", listen="127.0.0.1:0", secret=SECRET)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        base = f"http://127.0.0.1:{server.server_port}"
        target = "/v1/instances/i%2F1/bindings/b-1"
        body = b'{"parameters":{}}'
        req = urllib.request.Request(base + target, data=body, method="PUT", headers=signed("PUT", target, body, ts=int(time.time())))
        with urllib.request.urlopen(req) as resp:
            self.assertEqual((resp.status, json.load(resp)), (200, {"pending": False, "credentials": {"token": "t"}}))
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req)  # the same signature again
        self.assertEqual((e.exception.code, json.load(e.exception)["error"]), (401, "unauthorized"))


if __name__ == "__main__":
    unittest.main()
