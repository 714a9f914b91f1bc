"use strict";
/**
 * agora-adapter: the plumbing of an Agora remote adapter (protocol v1), on
 * Node 20's standard library alone. One CommonJS file: copy it next to your
 * adapter (`agora adapter init --lang node` does).
 *
 * You write the backend work as an object with methods (plain or async);
 * this module does the rest of
 * https://github.com/agora-osb/agora/blob/main/docs/adapter-protocol.md:
 * signature, timestamp and replay checks, routing, JSON, the protocol's
 * error codes, and capabilities declared from the methods you wrote.
 *
 *   class Service {
 *     provision(instanceId, req) {}              // required
 *     deprovision(instanceId, req) {}            // required
 *     bind(instanceId, bindingId, req) {}        // required
 *     unbind(instanceId, bindingId, req) {}      // required
 *     update(instanceId, req) {}                 // optional: capability "update"
 *     inspect(instanceId, req) {}                // optional: capability "inspect"
 *     status(instanceId, operation, req) {}      // optional: capability "status"
 *   }
 *   agora.serve(new Service(), { name: "files", version: "1.0.0", listen: "127.0.0.1:9093", secret });
 *
 * `req` is the whole request body, untouched, fields Agora adds within v1
 * included (for the GET calls, inspect and status, the query parameters,
 * with `plan` as {id, name} and inspect's `receipt` decoded). Return the
 * result as an object (undefined is {}); it is sent as it is, with
 * `pending: false` added to a mutating call's result that does not say.
 * Throw NotFound, AlreadyExists, InvalidParameters, NotSupported, Terminal
 * or Internal for the protocol's error codes; any other error is answered
 * `500 internal` (Agora retries it). Messages reach Agora's logs and, for
 * InvalidParameters, the app developer: never put a secret in one.
 *
 * versions(req) reads a provision's or update's maintenance_info (v1.1):
 * { current, requested } versions, undefined where absent; they differ on
 * an upgrade. atLeast(version, "1.1.0") tells whether a version includes
 * 1.1.0's work.
 */

const crypto = require("node:crypto");
const fs = require("node:fs/promises");
const http = require("node:http");
const { parseArgs } = require("node:util");

const PROTOCOL = "agora.adapter/v1";
const MINOR = 1; // v1.1: provision and update carry maintenance_info (see versions())
const MAX_SKEW = 300; // seconds a timestamp may be off; also how long signatures are remembered
const MAX_BODY = 1 << 20; // requests are small JSON documents
const REQUIRED = ["provision", "deprovision", "bind", "unbind"];
const OPTIONAL = ["update", "status", "inspect"]; // each one a capability of the same name
const KINDS = ["provision", "update", "deprovision", "bind", "unbind"];

/** An answer with the protocol's error body {"error": code, "message": message}. */
class AdapterError extends Error {
  get name() { return this.constructor.name; }
  get status() { return 500; }
  get code() { return "internal"; }
}
/** The instance or binding does not exist (Agora counts it as success for deprovision and unbind). */
class NotFound extends AdapterError {
  get status() { return 404; }
  get code() { return "not_found"; }
}
/** A conflicting resource that this request did not create. */
class AlreadyExists extends AdapterError {
  get status() { return 409; }
  get code() { return "already_exists"; }
}
/** Parameters the backend cannot honour; the message is shown to the app developer as it is. */
class InvalidParameters extends AdapterError {
  get status() { return 400; }
  get code() { return "invalid_parameters"; }
}
/** This operation or change is not offered. */
class NotSupported extends AdapterError {
  get status() { return 501; }
  get code() { return "not_supported"; }
}
/** Retrying cannot help: Agora fails the operation at once. */
class Terminal extends AdapterError {
  get status() { return 422; }
  get code() { return "terminal"; }
}
/** A failure that may pass: Agora retries. */
class Internal extends AdapterError {}
/** The signature, timestamp or replay check failed. */
class Unauthorized extends AdapterError {
  get status() { return 401; }
  get code() { return "unauthorized"; }
}

// ---- signatures ------------------------------------------------------------

/** The five lines both sides feed to HMAC-SHA256; target is the path as sent, with its query. */
function stringToSign(method, target, timestamp, nonce, body) {
  const bodyHash = crypto.createHash("sha256").update(body).digest("hex");
  return [method, target, timestamp, nonce, bodyHash].join("\n");
}

/** The X-Agora-Signature header's value: "v1=" and the lowercase hex HMAC-SHA256. */
function signature(secret, method, target, timestamp, nonce, body) {
  return "v1=" + crypto.createHmac("sha256", secret).update(stringToSign(method, target, timestamp, nonce, body)).digest("hex");
}

/** Checks requests in the protocol's order and remembers accepted signatures, so a captured request cannot be sent again. */
class Verifier {
  constructor(secret, clock = () => Date.now() / 1000) {
    if (!secret) throw new TypeError("agora-adapter: the secret shared with Agora is empty");
    this.secret = secret;
    this.clock = clock;
    this.seen = new Map(); // signature -> when its timestamp leaves the window
    this.nextPrune = 0;
  }

  /** Throws Unauthorized unless the request is signed, fresh, authentic and new. */
  verify(method, target, timestamp, nonce, sig, body) {
    if (!timestamp || !nonce || !sig) {
      throw new Unauthorized("missing signature: the X-Agora-Timestamp, X-Agora-Nonce and X-Agora-Signature headers are required");
    }
    const now = this.clock();
    if (!/^[0-9]{1,19}$/.test(timestamp) || Math.abs(now - Number(timestamp)) > MAX_SKEW) {
      throw new Unauthorized(`stale timestamp: X-Agora-Timestamp is more than ${MAX_SKEW}s away from the adapter's clock; check both clocks`);
    }
    const want = Buffer.from(signature(this.secret, method, target, timestamp, nonce, body));
    const got = Buffer.from(sig);
    if (want.length !== got.length || !crypto.timingSafeEqual(want, got)) {
      throw new Unauthorized("bad signature: check that Agora and the adapter share the same secret");
    }
    // Only authentic requests reach the replay memory, so forged ones cannot fill it.
    if (now >= this.nextPrune) { // at most once a second: it holds ten minutes of requests at most
      this.nextPrune = now + 1;
      for (const [s, until] of this.seen) if (until < now) this.seen.delete(s);
    }
    if (this.seen.has(sig)) throw new Unauthorized("replayed request: this signature was already used");
    this.seen.set(sig, Number(timestamp) + MAX_SKEW);
  }
}

// ---- routing ---------------------------------------------------------------

/** The protocol over a handlers object, independent of any HTTP server: handle() answers one request. */
class Adapter {
  constructor(handlers, { name, version, secret, clock, log = console } = {}) {
    const missing = REQUIRED.filter((m) => typeof handlers?.[m] !== "function");
    if (missing.length) {
      throw new TypeError(`agora-adapter: ${handlers?.constructor?.name ?? handlers} has no ${missing.join(", ")} method: every adapter provisions, deprovisions, binds and unbinds`);
    }
    this.handlers = handlers;
    this.name = name;
    this.version = version;
    this.capabilities = OPTIONAL.filter((c) => typeof handlers[c] === "function");
    this.verifier = new Verifier(secret, clock);
    this.log = log;
  }

  /** Answers one request: {status, doc}. headers are Node's (lowercase names); body is a Buffer. */
  async handle(method, target, headers, body) {
    const path = target.split("?")[0];
    try {
      this.verifier.verify(method, target, headers["x-agora-timestamp"] ?? "", headers["x-agora-nonce"] ?? "", headers["x-agora-signature"] ?? "", body);
      return await this.route(method, target, body);
    } catch (e) {
      const requestId = headers["x-agora-request-id"] ?? "-";
      if (e instanceof AdapterError) {
        if (e.status >= 500 && e.status !== 501) this.log.warn(`${method} ${path} (request ${requestId}): ${e.code} ${e.message}`);
        return { status: e.status, doc: { error: e.code, message: e.message } };
      }
      // A bug or a full disk: Agora retries later.
      this.log.error(`${method} ${path} (request ${requestId}) failed:`, e);
      return { status: 500, doc: { error: "internal", message: `${e?.name ?? "Error"}: ${e?.message ?? e}` } };
    }
  }

  async route(method, target, body) {
    const q = target.indexOf("?");
    const path = q < 0 ? target : target.slice(0, q);
    const notPart = () => new NotSupported(`${method} ${path} is not part of protocol v1`);
    let parts;
    try {
      // Split before decoding: an ID may hold an encoded "/".
      parts = path.split("/").map(decodeURIComponent);
    } catch {
      throw notPart();
    }
    if (parts[0] !== "" || parts[1] !== "v1" || parts.slice(2).includes("")) throw notPart();
    parts = parts.slice(2);
    if (parts.length === 1 && parts[0] === "capabilities" && method === "GET") {
      return { status: 200, doc: { protocol: PROTOCOL, minor: MINOR, name: this.name, version: this.version, capabilities: this.capabilities } };
    }
    let call;
    if (parts.length === 2 && parts[0] === "instances") {
      call = { GET: "inspect", PUT: "provision", PATCH: "update", DELETE: "deprovision" }[method];
    } else if (parts.length === 4 && parts[0] === "instances" && parts[2] === "bindings") {
      call = { PUT: "bind", DELETE: "unbind" }[method];
    } else if (parts.length === 4 && parts[0] === "instances" && parts[2] === "operations" && method === "GET") {
      call = "status";
    }
    if (!call) throw notPart();
    if (OPTIONAL.includes(call) && !this.capabilities.includes(call)) {
      throw new NotSupported(`this adapter does not declare the ${call} capability`);
    }
    const ids = [parts[1], ...parts.slice(3)];
    const req = method === "GET" ? queryRequest(call, q < 0 ? "" : target.slice(q + 1)) : bodyRequest(body);
    let result = await this.handlers[call](...ids, req);
    if (result === undefined || result === null) result = {};
    if (typeof result !== "object" || Array.isArray(result)) {
      throw new Internal(`the adapter's ${call} returned ${Array.isArray(result) ? "an array" : typeof result}, not an object`);
    }
    if (method !== "GET") result = { pending: false, ...result };
    return { status: result.pending ? 202 : 200, doc: result };
  }
}

function bodyRequest(body) {
  let req;
  try {
    req = JSON.parse(body.length ? body.toString("utf8") : "{}");
  } catch (e) {
    throw new Terminal(`the request body is not JSON: ${e.message}`);
  }
  if (req === null || typeof req !== "object" || Array.isArray(req)) throw new Terminal("the request body is not a JSON object");
  return req;
}

function queryRequest(call, query) {
  const req = Object.fromEntries(new URLSearchParams(query));
  req.plan = { id: req.plan_id ?? "", name: req.plan_name ?? "" };
  if (call === "status" && !KINDS.includes(req.kind)) throw new Terminal(`kind ${JSON.stringify(req.kind ?? "")} is not one of ${KINDS.join(", ")}`);
  if (call === "inspect" && "receipt" in req) {
    let receipt = null;
    try {
      receipt = JSON.parse(req.receipt);
    } catch {
      // answered below
    }
    if (receipt === null || typeof receipt !== "object" || Array.isArray(receipt)) throw new Terminal("receipt must be a JSON object of strings");
    req.receipt = receipt;
  }
  return req;
}

// ---- serving ---------------------------------------------------------------

/** An http.Server for handlers, not listening yet. */
function createServer(handlers, options) {
  const adapter = new Adapter(handlers, options);
  return http.createServer((req, res) => {
    const chunks = [];
    let size = 0;
    const reply = (status, doc) => {
      const data = Buffer.from(JSON.stringify(doc));
      res.writeHead(status, { "Content-Type": "application/json", "Content-Length": data.length });
      res.end(data);
    };
    req.on("data", (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        res.setHeader("Connection", "close"); // the rest of the body is not read
        reply(413, { error: "terminal", message: `the request body is larger than ${MAX_BODY} bytes` });
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on("end", async () => {
      if (size > MAX_BODY) return;
      const { status, doc } = await adapter.handle(req.method, req.url, req.headers, Buffer.concat(chunks));
      reply(status, doc);
    });
  });
}

/** Serves handlers until the process ends. The first line on stdout is "listening on http://HOST:PORT". */
function serve(handlers, { name, version, listen = "127.0.0.1:9093", secret } = {}) {
  if (!secret) {
    console.error("agora-adapter: the secret shared with Agora is required: --secret or AGORA_ADAPTER_SECRET");
    process.exit(2);
  }
  const server = createServer(handlers, { name, version, secret });
  const at = listen.lastIndexOf(":");
  const host = listen.slice(0, at).replace(/^\[|\]$/g, "") || "0.0.0.0";
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(Number(listen.slice(at + 1)), host, () => {
      const { address, port } = server.address();
      console.log(`listening on http://${address.includes(":") ? `[${address}]` : address}:${port}`);
      resolve(server);
    });
  });
}

/**
 * Parses the command line: --listen and --secret (default $AGORA_ADAPTER_SECRET),
 * plus your own options in util.parseArgs's form, each with an optional help text.
 */
function parseArguments(extra = {}, { listen = "127.0.0.1:9093", description = "", args = process.argv.slice(2) } = {}) {
  const all = {
    listen: { type: "string", default: listen, help: `host:port to serve on (default ${listen}; port 0 picks a free one)` },
    secret: { type: "string", default: process.env.AGORA_ADAPTER_SECRET, help: "the secret shared with Agora (default $AGORA_ADAPTER_SECRET, which keeps it out of ps)" },
    help: { type: "boolean", short: "h", help: "show this help" },
    ...extra,
  };
  const usage = [description, "options:", ...Object.entries(all).map(([k, o]) => `  --${k}${o.type === "string" ? " VALUE" : ""}  ${o.help ?? ""}`)].filter(Boolean).join("\n");
  const options = Object.fromEntries(Object.entries(all).map(([k, { help, ...o }]) => [k, o]));
  for (const o of Object.values(options)) if (o.default === undefined) delete o.default;
  let values;
  try {
    ({ values } = parseArgs({ args, options, strict: true }));
  } catch (e) {
    console.error(`${e.message}\n${usage}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  return values;
}

// ---- maintenance_info (v1.1) ------------------------------------------------

/**
 * The maintenance_info versions of a provision or update body: { current,
 * requested }, undefined where absent. They differ on an upgrade: do that
 * version's work, idempotently (a repeat may follow).
 */
function versions(req) {
  const mi = (req && req.maintenance_info) || {};
  return { current: mi.current?.version, requested: mi.requested?.version };
}

/**
 * Whether semantic version `version` (undefined: no version) is `minimum` or
 * later, by major.minor.patch; for an adapter doing each version's work up
 * to the requested one.
 */
function atLeast(version, minimum) {
  if (version === undefined || version === null) return false;
  const core = (v) => v.split(/[-+]/, 1)[0].split(".").map(Number);
  const [a, b] = [core(version), core(minimum)];
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] > b[i];
  return true;
}

// ---- idempotency helpers ---------------------------------------------------

/** value, when it can name a file on its own (no "/", no "..", no dotfile); else Terminal. */
function safeId(value) {
  if (!/^[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,254}$/.test(value)) throw new Terminal(`id ${JSON.stringify(value)} cannot name a file`);
  return value;
}

/**
 * Create-if-absent, atomically: the first call (among concurrent ones too, in
 * any process) stores make()'s text at path; every call returns the text
 * stored. For a token per binding, so a repeated bind returns the same
 * credentials.
 */
async function createOnce(path, make) {
  try {
    return await fs.readFile(path, "utf8");
  } catch (e) {
    if (e.code !== "ENOENT") throw e;
  }
  // Write a private file, then link it into place: the link either wins
  // or finds the winner's complete file, never a half-written one.
  const tmp = `${path}.${crypto.randomBytes(8).toString("hex")}.tmp`;
  await fs.writeFile(tmp, await make(), { flag: "wx", mode: 0o600 });
  try {
    await fs.link(tmp, path);
  } catch (e) {
    if (e.code !== "EEXIST") throw e;
  } finally {
    await fs.unlink(tmp);
  }
  return fs.readFile(path, "utf8");
}

/** Removes a file or a directory tree. false when it was not there (a repeat, or a concurrent twin, came first). */
async function remove(path) {
  const exists = async () => fs.lstat(path).then(() => true, (e) => {
    if (e.code === "ENOENT") return false;
    throw e;
  });
  if (!(await exists())) return false;
  await fs.rm(path, { recursive: true, force: true }); // a twin removing the same tree is no error
  if (await exists()) await fs.rm(path, { recursive: true }); // still there: throw the real reason
  return true;
}

module.exports = {
  PROTOCOL, MINOR, MAX_SKEW, AdapterError, NotFound, AlreadyExists, InvalidParameters, NotSupported, Terminal, Internal, Unauthorized,
  stringToSign, signature, Verifier, Adapter, createServer, serve, parseArguments, safeId, createOnce, remove, versions, atLeast,
};
