# The Vault policy agora serve needs, and nothing more.
#
# Written for the defaults: vault.mount "secret" (KV v2) and vault.prefix
# "agora". With other values, replace "secret/" and "agora/" below. The
# integration suite runs Agora with a token holding exactly this policy
# (integration/vaultauth_test.go), so a path missing here fails CI.
#
#   vault policy write agora deploy/vault/agora-policy.hcl

# Binding credentials, async parameters and producers' protocol secrets:
# secret/data/agora/instances/<iid>/bindings/<bid>,
# secret/data/agora/instances/<iid>/operations/<opid>,
# secret/data/agora/producers/<name>/secret.
path "secret/data/agora/*" {
  capabilities = ["create", "read", "update"]
}

# Deleting a secret removes its metadata (every version); the orphan sweep
# (agora admin orphans) lists and reads metadata.
path "secret/metadata/agora/*" {
  capabilities = ["read", "list", "delete"]
}

# The vault: references of catalog.yml. By convention they live below
# secret/agora-config/<adapter>; a reference elsewhere needs its own
# read rule here.
path "secret/data/agora-config/*" {
  capabilities = ["read"]
}

# Agora renews its own token and readiness looks it up. Tokens usually
# get these from Vault's "default" policy; they are here so a token
# created with no_default_policy works too.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}
