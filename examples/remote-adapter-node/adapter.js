#!/usr/bin/env node
"use strict";
// An Agora remote adapter on the agora-adapter SDK: a directory per instance
// under --root, a random token per binding in <dir>/.tokens/<binding_id>.
const crypto = require("node:crypto");
const fs = require("node:fs/promises");
const path = require("node:path");
const agora = require("./agora-adapter.js");

// The backend work. Names come from the IDs alone, so every call can be
// repeated and finds what an earlier one made.
class Files {
  constructor(root) { this.root = path.resolve(root); }

  path(iid, ...more) { return path.join(this.root, agora.safeId(iid), ...more); }

  async isDir(p) { return fs.stat(p).then((s) => s.isDirectory(), () => false); }

  async existing(iid) {
    if (!(await this.isDir(this.path(iid)))) throw new agora.NotFound(`instance ${iid} not found`);
    return this.path(iid);
  }

  async provision(iid, req) {
    if (Object.keys(req.parameters ?? {}).length) throw new agora.InvalidParameters("this service takes no parameters");
    await fs.mkdir(this.path(iid, ".tokens"), { recursive: true, mode: 0o700 }); // a repeat finds it: success
    return { metadata: { labels: { path: this.path(iid) } } };
  }

  async update(iid, req) { // nothing to change, but the instance must be there
    if (Object.keys(req.parameters ?? {}).length) throw new agora.InvalidParameters("this service takes no parameters");
    await this.existing(iid);
  }

  async inspect(iid) { // for the platform engineer's reconcile
    const exists = await this.isDir(this.path(iid, ".tokens"));
    return { exists, detail: `${this.path(iid)} ${exists ? "exists" : "missing"}` };
  }

  async deprovision(iid) {
    if (!(await agora.remove(this.path(iid)))) throw new agora.NotFound(`instance ${iid} not found`);
  }

  async bind(iid, bid) {
    const tokenFile = path.join(await this.existing(iid), ".tokens", agora.safeId(bid));
    const token = await agora.createOnce(tokenFile, () => crypto.randomBytes(32).toString("base64url")); // a repeat gets the same token
    return { credentials: { type: "agora-files", provider: "files-node", path: this.path(iid), token } };
  }

  async unbind(iid, bid) {
    if (!(await agora.remove(this.path(iid, ".tokens", agora.safeId(bid))))) throw new agora.NotFound(`binding ${bid} not found`);
  }
}

const args = agora.parseArguments({ root: { type: "string", default: "/tmp/agora-files", help: "the directory that holds one directory per instance" } },
  { listen: "127.0.0.1:9093", description: "An Agora remote adapter: a directory per instance, a token per binding." });
require("node:fs").mkdirSync(args.root, { recursive: true, mode: 0o700 });
agora.serve(new Files(args.root), { name: "files-node", version: "1.0.0", listen: args.listen, secret: args.secret })
  .catch((e) => { console.error(`cannot listen on ${args.listen}: ${e.message}`); process.exit(1); });
