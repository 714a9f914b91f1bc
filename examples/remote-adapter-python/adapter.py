#!/usr/bin/env python3
"""An Agora remote adapter on the agora_adapter SDK: a directory per instance
under --root, a random token per binding in <dir>/.tokens/<binding_id>.
Version 1.1.0 (the plan's maintenance_info) adds a <dir>/public directory."""
import os
import secrets

import agora_adapter as agora


class Files:
    """The backend work. Names come from the IDs alone, so every call can be
    repeated and finds what an earlier one made."""

    def __init__(self, root):
        self.root = os.path.abspath(root)

    def path(self, iid, *more):
        return os.path.join(self.root, agora.safe_id(iid), *more)

    def existing(self, iid):
        if not os.path.isdir(self.path(iid)):
            raise agora.NotFound(f"instance {iid} not found")
        return self.path(iid)

    def provision(self, iid, req):
        if req.get("parameters"):
            raise agora.InvalidParameters("this service takes no parameters")
        os.makedirs(self.path(iid, ".tokens"), mode=0o700, exist_ok=True)  # a repeat finds it: success
        return self.upgrade(iid, req)

    def update(self, iid, req):  # the instance must be there; an upgrade does its version's work
        if req.get("parameters"):
            raise agora.InvalidParameters("this service takes no parameters")
        self.existing(iid)
        return self.upgrade(iid, req)

    def upgrade(self, iid, req):  # every version's work up to the requested one, repeatable
        _, version = agora.versions(req)
        if agora.at_least(version, "1.1.0"):
            os.makedirs(self.path(iid, "public"), exist_ok=True)
        return {"metadata": {"labels": {"path": self.path(iid), "version": version or "none"}}}

    def inspect(self, iid, req):  # for the platform engineer's reconcile
        exists = os.path.isdir(self.path(iid, ".tokens"))
        return {"exists": exists, "detail": f"{self.path(iid)} {'exists' if exists else 'missing'}"}

    def deprovision(self, iid, req):
        if not agora.remove(self.path(iid)):
            raise agora.NotFound(f"instance {iid} not found")

    def bind(self, iid, bid, req):
        token_file = os.path.join(self.existing(iid), ".tokens", agora.safe_id(bid))
        token = agora.create_once(token_file, lambda: secrets.token_urlsafe(32))  # a repeat gets the same token
        return {"credentials": {"type": "agora-files", "provider": "files-py", "path": self.path(iid), "token": token}}

    def unbind(self, iid, bid, req):
        if not agora.remove(self.path(iid, ".tokens", agora.safe_id(bid))):
            raise agora.NotFound(f"binding {bid} not found")


if __name__ == "__main__":
    parser = agora.arguments(__doc__, listen="127.0.0.1:9091")
    parser.add_argument("--root", default="/tmp/agora-files", help="the directory that holds one directory per instance")
    args = parser.parse_args()
    os.makedirs(args.root, mode=0o700, exist_ok=True)
    agora.serve(Files(args.root), name="files-py", version="1.0.0", listen=args.listen, secret=args.secret)
