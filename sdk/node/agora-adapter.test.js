"use strict";
// Tests of agora-adapter: node --test sdk/node/ (go test ./sdk runs them).

const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { test } = require("node:test");

const agora = require("./agora-adapter.js");

const VECTORS = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "..", "docs", "signing-vectors.json"), "utf8"));
const SECRET = "sdk-test-secret";
const NOW = 1732476000;
const quiet = { warn() {}, error() {} };

const vector = (name) => VECTORS.vectors.find((v) => v.name === name);

function signed(method, target, body = "", { secret = SECRET, ts = NOW } = {}) {
  const nonce = crypto.randomBytes(16).toString("hex");
  return {
    "x-agora-timestamp": String(ts), "x-agora-nonce": nonce, "x-agora-request-id": "rid-1",
    "x-agora-signature": agora.signature(secret, method, target, String(ts), nonce, Buffer.from(body)),
  };
}

/** Handlers that record their calls and return (or throw) what the test says. */
class Recorder {
  constructor(result, error) { this.calls = []; this.result = result; this.error = error; }
  async call(...args) {
    this.calls.push(args);
    if (this.error) throw this.error;
    return this.result;
  }
  provision(iid, req) { return this.call("provision", iid, req); }
  deprovision(iid, req) { return this.call("deprovision", iid, req); }
  bind(iid, bid, req) { return this.call("bind", iid, bid, req); }
  unbind(iid, bid, req) { return this.call("unbind", iid, bid, req); }
}
class Full extends Recorder {
  update(iid, req) { return this.call("update", iid, req); }
  inspect(iid, req) { return this.call("inspect", iid, req); }
  status(iid, op, req) { return this.call("status", iid, op, req); }
}

const adapter = (handlers = new Full(), clock = () => NOW) => new agora.Adapter(handlers, { name: "t", version: "1", secret: SECRET, clock, log: quiet });
const call = (a, method, target, body = "") => a.handle(method, target, signed(method, target, body), Buffer.from(body));

test("signing vectors: each signs, verifies once, and is a replay the second time", () => {
  for (const v of VECTORS.vectors) {
    const body = Buffer.from(v.body, "utf8");
    assert.equal(agora.stringToSign(v.method, v.target, v.timestamp, v.nonce, body), v.string_to_sign, v.name);
    assert.equal(agora.signature(v.secret, v.method, v.target, v.timestamp, v.nonce, body), v.signature, v.name);
    const verifier = new agora.Verifier(v.secret, () => Number(v.timestamp));
    verifier.verify(v.method, v.target, v.timestamp, v.nonce, v.signature, body);
    assert.throws(() => verifier.verify(v.method, v.target, v.timestamp, v.nonce, v.signature, body), /replayed/, v.name);
  }
});

test("signing vectors: must_reject and accept_at_boundary", () => {
  for (const c of VECTORS.must_reject) {
    const v = vector(c.request);
    const verifier = new agora.Verifier(v.secret, () => c.now);
    assert.throws(() => verifier.verify(v.method, v.target, v.timestamp, v.nonce, c.signature, Buffer.from(v.body)), agora.Unauthorized, c.name);
    assert.equal(verifier.seen.size, 0, `${c.name}: a rejected request entered the replay memory`);
  }
  for (const c of VECTORS.accept_at_boundary) {
    const v = vector(c.request);
    new agora.Verifier(v.secret, () => c.now).verify(v.method, v.target, v.timestamp, v.nonce, v.signature, Buffer.from(v.body));
  }
});

test("signing vectors: routing decodes the IDs of the percent-encoded target", async () => {
  for (const v of VECTORS.vectors.filter((v) => v.binding_id && v.method === "PUT")) {
    const h = new Full({});
    const { status } = await call(adapter(h), v.method, v.target, v.body);
    assert.equal(status, 200);
    assert.deepEqual(h.calls[0].slice(0, 3), ["bind", v.instance_id, v.binding_id]);
  }
});

test("verification: order, reasons, and nothing remembered of rejected requests", async () => {
  const a = adapter();
  const cases = [
    [{}, "missing signature"],
    [signed("GET", "/v1/capabilities", "", { ts: NOW - 301 }), "stale timestamp"],
    [{ ...signed("GET", "/v1/capabilities"), "x-agora-timestamp": "１７３２４７６０００" }, "stale timestamp"],
    [signed("GET", "/v1/capabilities", "", { secret: "other" }), "bad signature"],
    [signed("GET", "/v1/capabilities?x=1"), "bad signature"],
  ];
  for (const [headers, reason] of cases) {
    const { status, doc } = await a.handle("GET", "/v1/capabilities", headers, Buffer.alloc(0));
    assert.deepEqual([status, doc.error], [401, "unauthorized"], reason);
    assert.match(doc.message, new RegExp(reason));
  }
  assert.equal(a.verifier.seen.size, 0);
  assert.throws(() => new agora.Adapter(new Full(), { name: "t", version: "1", secret: "" }), /secret/);
});

test("verification: replays rejected, expired signatures forgotten", async () => {
  let now = NOW;
  const a = adapter(new Full(), () => now);
  const headers = signed("GET", "/v1/capabilities");
  assert.equal((await a.handle("GET", "/v1/capabilities", headers, Buffer.alloc(0))).status, 200);
  assert.match((await a.handle("GET", "/v1/capabilities", headers, Buffer.alloc(0))).doc.message, /replayed/);
  now = NOW + 301;
  await a.handle("GET", "/v1/capabilities", signed("GET", "/v1/capabilities", "", { ts: now }), Buffer.alloc(0));
  assert.equal(a.verifier.seen.size, 1, "expired signatures are not forgotten");
});

test("capabilities follow the handlers; missing required ones are named at start", async () => {
  for (const [h, caps] of [[new Recorder(), []], [new Full(), ["update", "status", "inspect"]]]) {
    const { status, doc } = await call(adapter(h), "GET", "/v1/capabilities");
    assert.deepEqual([status, doc], [200, { protocol: "agora.adapter/v1", minor: 1, name: "t", version: "1", capabilities: caps }]);
  }
  assert.throws(() => new agora.Adapter({ provision() {} }, { secret: SECRET }), /deprovision, bind, unbind/);
});

test("every route gets its IDs and the whole body, and results pass through", async () => {
  const body = JSON.stringify({ offering: "files", plan: { id: "p", name: "small" }, future_field: { kept: true } });
  for (const [method, target, want] of [
    ["PUT", "/v1/instances/i-1", ["provision", "i-1"]],
    ["PATCH", "/v1/instances/i-1", ["update", "i-1"]],
    ["DELETE", "/v1/instances/i-1", ["deprovision", "i-1"]],
    ["PUT", "/v1/instances/i-1/bindings/b-1", ["bind", "i-1", "b-1"]],
    ["DELETE", "/v1/instances/i-1/bindings/b-1", ["unbind", "i-1", "b-1"]],
  ]) {
    const h = new Full({ metadata: {}, expires_at: "2030-01-01T00:00:00Z" });
    const { status, doc } = await call(adapter(h), method, target, body);
    assert.equal(status, 200, JSON.stringify(doc));
    assert.deepEqual(h.calls[0].slice(0, -1), want);
    assert.deepEqual(h.calls[0].at(-1), JSON.parse(body), "the body must reach the handler whole");
    assert.deepEqual(doc, { pending: false, metadata: {}, expires_at: "2030-01-01T00:00:00Z" });
  }
});

test("GET calls get the query", async () => {
  let h = new Full({ state: "succeeded" });
  let res = await call(adapter(h), "GET", "/v1/instances/i-1/operations/op%2F1?kind=bind&binding_id=b-1&plan_id=p&plan_name=small&new=x");
  assert.deepEqual([res.status, res.doc], [200, { state: "succeeded" }]);
  assert.deepEqual(h.calls[0], ["status", "i-1", "op/1", { kind: "bind", binding_id: "b-1", plan_id: "p", plan_name: "small", new: "x", plan: { id: "p", name: "small" } }]);
  h = new Full({ exists: true });
  res = await call(adapter(h), "GET", '/v1/instances/i-1?offering=f&receipt={"path":"/x"}');
  assert.deepEqual([res.status, res.doc], [200, { exists: true }]);
  assert.deepEqual(h.calls[0][2].receipt, { path: "/x" });
  for (const bad of ["/v1/instances/i-1?receipt=[1]", "/v1/instances/i-1?receipt=nope", "/v1/instances/i-1/operations/op?kind=bogus"]) {
    assert.deepEqual([(await call(adapter(), "GET", bad)).status, (await call(adapter(), "GET", bad)).doc.error], [422, "terminal"], bad);
  }
});

test("pending answers 202; what is not part of the protocol answers 501", async () => {
  const res = await call(adapter(new Full({ pending: true, operation: "op-1" })), "PUT", "/v1/instances/i-1", "{}");
  assert.deepEqual([res.status, res.doc], [202, { pending: true, operation: "op-1" }]);
  for (const [method, target] of [["POST", "/v1/instances/i-1"], ["GET", "/v2/capabilities"], ["GET", "/v1/instances//bindings/b"],
    ["PUT", "/v1/instances/i/bindings"], ["GET", "/"], ["GET", "/v1/instances/%E0%A4%A"]]) {
    const { status, doc } = await call(adapter(), method, target);
    assert.deepEqual([status, doc.error], [501, "not_supported"], target);
  }
  for (const [method, target] of [["PATCH", "/v1/instances/i-1"], ["GET", "/v1/instances/i-1"], ["GET", "/v1/instances/i-1/operations/o?kind=bind"]]) {
    const { status, doc } = await call(adapter(new Recorder()), method, target);
    assert.deepEqual([status, doc.error], [501, "not_supported"]);
    assert.match(doc.message, /capability/);
  }
  for (const body of ["{", "[1]", '"x"', "null"]) {
    const { status, doc } = await call(adapter(), "PUT", "/v1/instances/i-1", body);
    assert.deepEqual([status, doc.error], [422, "terminal"], body);
  }
});

test("each error class maps to its code", async () => {
  for (const [err, status, code] of [
    [new agora.NotFound("gone"), 404, "not_found"],
    [new agora.AlreadyExists("taken"), 409, "already_exists"],
    [new agora.InvalidParameters("quota_mb must be at most 1000"), 400, "invalid_parameters"],
    [new agora.NotSupported("no"), 501, "not_supported"],
    [new agora.Terminal("never"), 422, "terminal"],
    [new agora.Internal("later"), 500, "internal"],
    [Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" }), 500, "internal"],
  ]) {
    const { status: got, doc } = await call(adapter(new Full(undefined, err)), "PUT", "/v1/instances/i-1", "{}");
    assert.deepEqual([got, doc.error], [status, code]);
    assert.ok(doc.message.includes(err.message), doc.message);
  }
  const { status, doc } = await call(adapter(new Full(["x"])), "PUT", "/v1/instances/i-1", "{}");
  assert.deepEqual([status, doc.error], [500, "internal"]);
});

test("createOnce: concurrent callers agree on one value, nothing left behind", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agora-sdk-"));
  try {
    const file = path.join(dir, "token");
    const got = await Promise.all(Array.from({ length: 16 }, (_, i) => agora.createOnce(file, () => `t${i}`)));
    assert.equal(new Set(got).size, 1, got.join(","));
    assert.deepEqual(fs.readdirSync(dir), ["token"], "temporary files left behind");
    assert.equal(await agora.createOnce(file, () => "other"), got[0]);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("remove and safeId", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agora-sdk-"));
  try {
    const tree = path.join(dir, "i-1");
    fs.mkdirSync(path.join(tree, ".tokens"), { recursive: true });
    fs.writeFileSync(path.join(tree, ".tokens", "b"), "t");
    assert.equal(await agora.remove(tree), true);
    assert.equal(fs.existsSync(tree), false);
    assert.equal(await agora.remove(tree), false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(agora.safeId("0b6f-x_y.z~"), "0b6f-x_y.z~");
  for (const bad of ["", "..", ".hidden", "a/b", "a\0", "x".repeat(300)]) assert.throws(() => agora.safeId(bad), agora.Terminal, bad);
});

test("over HTTP: a signed request through the server, then its replay", async (t) => {
  const server = agora.createServer(new Full({ credentials: { token: "t" } }), { name: "t", version: "1", secret: SECRET, log: quiet });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => server.close());
  const target = "/v1/instances/i%2F1/bindings/b-1";
  const body = '{"parameters":{}}';
  const headers = { ...signed("PUT", target, body, { ts: Math.floor(Date.now() / 1000) }), "content-type": "application/json" };
  const url = `http://127.0.0.1:${server.address().port}${target}`;
  let res = await fetch(url, { method: "PUT", headers, body });
  assert.deepEqual([res.status, await res.json()], [200, { pending: false, credentials: { token: "t" } }]);
  res = await fetch(url, { method: "PUT", headers, body });
  assert.deepEqual([res.status, (await res.json()).error], [401, "unauthorized"]);
  res = await fetch(url, { method: "PUT", headers, body: "x".repeat(2 << 20) });
  assert.equal(res.status, 413);
});

test("versions reads maintenance_info of a provision or update", () => {
  const up = { maintenance_info: { current: { version: "1.0.0" }, requested: { version: "1.1.0", description: "d" } } };
  assert.deepEqual(agora.versions(up), { current: "1.0.0", requested: "1.1.0" });
  assert.deepEqual(agora.versions({ maintenance_info: { requested: { version: "1.0.0" } } }), { current: undefined, requested: "1.0.0" });
  assert.deepEqual(agora.versions({}), { current: undefined, requested: undefined });
});

test("atLeast compares major.minor.patch", () => {
  for (const [version, minimum, want] of [["1.1.0", "1.1.0", true], ["1.10.0", "1.2.0", true], ["1.0.9", "1.1.0", false],
    ["2.0.0+b.1", "1.1.0", true], [undefined, "1.0.0", false]]) {
    assert.equal(agora.atLeast(version, minimum), want, `${version} >= ${minimum}`);
  }
});
