package main

import (
	"context"
	"flag"
	"strings"
)

// commands is agora's command table: every command and subcommand, its
// usage, help and flags, and the function that runs it. Help, the "did you
// mean" suggestions and shell completion are all read from here, so a
// command added here is documented and completed everywhere.
//
// Adding a command: write its flags as a function that declares them on a
// *flag.FlagSet and returns their values (with outputFlag for -o when it
// prints data), have the run function parse with it (newFlagSet,
// parseFlags or parseArgs), and add an entry here, or to a group's list
// below. The table answers -h itself; a run function never sees it.
func commands() command {
	return command{
		Name:  "agora",
		Short: "one Open Service Broker for every producer team's services",
		Subcommands: []command{
			{
				Name: "serve", Args: "[-config agora.yml]",
				Short: "run the broker (config file plus AGORA_* environment)",
				Long: `Reads the config file (default ./agora.yml when present) with AGORA_* environment
variables on top, connects to Vault and Redis, loads the catalog and serves OSB.`,
				Flags: flagsOf(serveFlags),
				Run:   func(ctx context.Context, args []string, s streams) error { return serve(ctx, args, s.out, s.errOut) },
			},
			{
				Name: "dev", Args: "[-listen 127.0.0.1:8080]",
				Short: "run everything locally on embedded defaults (in the foreground)",
				Long: `Starts a dev Vault (built on first use), an in-process Redis (unless REDIS_URL) and
the broker with the repository's catalog.yml; runs until Ctrl-C.`,
				Flags: flagsOf(devFlags),
				Run:   func(ctx context.Context, args []string, s streams) error { return dev(ctx, args, s.out, s.errOut) },
			},
			{
				Name: "catalog", Short: "check a catalog file",
				Subcommands: []command{{
					Name: "check", Args: "[-catalog catalog.yml] [-config agora.yml | -offline]",
					Short: "validate a catalog and print every problem",
					Long: `Checks every rule of the catalog at once. With a Vault configured (-config, or
AGORA_VAULT_ADDR and its login) it also checks that its vault: references resolve;
it never calls a backend or an upstream broker.`,
					Flags: flagsOf(catalogCheckFlags),
					Run: func(ctx context.Context, args []string, s streams) error {
						return catalogCmd(ctx, append([]string{"check"}, args...), s.out)
					},
				}},
			},
			{
				Name: "adapters", Short: "list the adapters this binary offers",
				Flags: flagsOf(outputFlag),
				Run:   func(_ context.Context, args []string, s streams) error { return listAdapters(args, s.out) },
			},
			{
				Name: "adapter", Short: "a remote adapter: write a new project, or test one",
				Subcommands: []command{
					{
						Name: "init", Args: "--lang python|node|go [--offering NAME] [--force] DIR",
						Short: "write a complete, working remote adapter project into DIR",
						Long: `Writes a small real service on the SDK, its slice.yml, a README, and ./run,
which agora adapter test passes as it is.`,
						Flags: flagsOf(adapterInitFlags),
						Run:   adapterRun("init"),
					},
					{
						Name: "test", Args: "--url URL --secret SECRET [flags]",
						Short: "run the protocol checks and the conformance kit against a remote adapter",
						Long: `Judges a remote adapter (protocol v1, docs/adapter-protocol.md): the protocol's
own checks (capabilities, signatures, stale timestamps, replays) and the
conformance kit, through the client Agora uses. Exits 1 when any check fails.`,
						Flags: flagsOf(adapterTestFlags),
						Run:   adapterRun("test"),
					},
				},
			},
			{
				Name: "producer", Short: "a producer's self-service (login, apply, status, ...)",
				Long:        producerLong,
				Subcommands: producerCommands(),
			},
			{
				Name: "admin", Short: "the platform engineer's side (producers, slices, instances, ...)",
				Long:        adminLong,
				Subcommands: adminCommands(),
			},
			{
				Name: "version", Args: "[-o json]",
				Short: "print agora's version, commit and Go version",
				Flags: flagsOf(outputFlag),
				Run:   func(_ context.Context, args []string, s streams) error { return printVersion(args, s.out) },
			},
			{
				Name: "completion", Args: "bash|zsh",
				Short: "print a shell completion script (commands, subcommands, flags)",
				Long: `bash:  source <(agora completion bash)     (add it to ~/.bashrc to keep it)
zsh:   source <(agora completion zsh)      (in ~/.zshrc, after compinit)
       or: agora completion zsh > "${fpath[1]}/_agora"`,
				Run: func(_ context.Context, args []string, s streams) error { return completionRun(args, s.out) },
			},
		},
	}
}

// flagsOf adapts a command's flag declaration, which returns the parsed
// values to its run function, to the table's Flags.
func flagsOf[T any](declare func(*flag.FlagSet) T) func(*flag.FlagSet) {
	return func(fs *flag.FlagSet) { declare(fs) }
}

func adapterRun(sub string) func(context.Context, []string, streams) error {
	return func(ctx context.Context, args []string, s streams) error {
		return adapterCmd(ctx, append([]string{sub}, args...), s.out, s.errOut)
	}
}

const producerLong = `Every command takes -o json for scripts. Logins are kept in
~/.config/agora/producer.json (mode 0600), one per producer and Agora URL;
the commands act as the active one (agora producer logins), or as another
with --as NAME. $AGORA_URL, $AGORA_PRODUCER and $AGORA_PRODUCER_TOKEN
override the saved login.`

func producerCommands() []command {
	leaf := func(name, args, short string) command {
		return command{
			Name: name, Args: args, Short: short,
			Flags: func(fs *flag.FlagSet) { producerFlags(name, fs) },
			Run: func(ctx context.Context, rest []string, s streams) error {
				return producerCmd(ctx, append([]string{name}, rest...), s.in, s.out, s.errOut)
			},
		}
	}
	return []command{
		leaf("login", "--url URL --name NAME [--token TOKEN] | --as NAME", "check and save your token (one login per producer and Agora), or switch logins"),
		leaf("logins", "", "your saved logins (producer and Agora), and which one is active"),
		leaf("register", "--url URL --name NAME --contact EMAIL [--namespace team-x-]", "ask to become a producer; prints your token ONCE and logs in"),
		leaf("apply", "-f slice.yml", "put your slice: validation, conformance gate, new version"),
		leaf("status", "", "your record, live offerings, pending versions, failures"),
		leaf("history", "", "every version of your slice, newest first"),
		leaf("restore", "VERSION", "make an earlier version current again (re-checked)"),
		leaf("deprecate", "OFFERING PLAN", "stop new instances of a plan; existing ones keep working"),
		leaf("remove", "OFFERING", "take an offering without instances out of the catalog"),
		leaf("instances", "[--limit N] [--cursor C]", "your instances and bindings (never credentials); with --limit or --cursor one page"),
		leaf("operations", "[--failed]", "latest operations, failures with their reasons"),
		upgradeCommand("producer"),
	}
}

const adminLong = `Flags: --url (or $AGORA_URL, default http://127.0.0.1:8080), --username and
--password (or $AGORA_USERNAME, $AGORA_PASSWORD): Agora's broker
credentials. Every command takes -o json.`

func adminCommands() []command {
	leaf := func(path []string, name, args, short string) command {
		return command{
			Name: name, Args: args, Short: short,
			Flags: func(fs *flag.FlagSet) { adminFlags(strings.Join(append(path[:len(path):len(path)], name), " "), fs) },
			Run: func(ctx context.Context, rest []string, s streams) error {
				return adminCmd(ctx, append(append(path[:len(path):len(path)], name), rest...), s.out, s.errOut)
			},
		}
	}
	producersPath, slicesPath, instancesPath := []string{"producers"}, []string{"slices"}, []string{"instances"}
	return []command{
		{
			Name: "producers", Short: "producers: list, create, approve, suspend, tokens",
			Subcommands: []command{
				leaf(producersPath, "list", "", "every producer"),
				leaf(producersPath, "create", "NAME --contact EMAIL [--namespace team-x-] [--auto-approve]", "an active producer; prints her token ONCE"),
				leaf(producersPath, "approve", "NAME", "let a (self-registered or suspended) producer in"),
				leaf(producersPath, "suspend", "NAME", "stop her token; her live slice stays served"),
				leaf(producersPath, "auto-approve", "NAME true|false", "her slices go live once the gate passes"),
				leaf(producersPath, "token", "NAME", "a new token (the old one stops working); shown ONCE"),
			},
		},
		{
			Name: "slices", Short: "a producer's slice versions: list, show, approve, reject",
			Subcommands: []command{
				leaf(slicesPath, "list", "NAME", "her slice versions"),
				leaf(slicesPath, "show", "NAME VERSION", "one version: its gate report, every check with its hint"),
				leaf(slicesPath, "approve", "NAME VERSION", "make a pending version live (its gate report is printed)"),
				leaf(slicesPath, "reject", "NAME VERSION [--reason TEXT]", "refuse a pending version"),
			},
		},
		leaf(nil, "catalog", "", "the catalog generation, in Redis and on the replica that answers"),
		leaf(nil, "canary", "", "the canary's latest verdict on every live producer offering"),
		{
			Name: "instances", Short: "every producer's instances: list, show, repair",
			Subcommands: []command{
				leaf(instancesPath, "list", "[--producer P] [--offering O] [--state failed|in_progress|stuck] [--stuck-for 30m]", "every producer's instances, page by page (--limit, --cursor)"),
				leaf(instancesPath, "show", "ID", "one instance: bindings, latest operation in full, receipt"),
				leaf(instancesPath, "retry", "ID [--binding B]", "run its failed latest operation again"),
				leaf(instancesPath, "force-fail", "ID --reason TEXT [--binding B]", "end an operation stuck in progress"),
				leaf(instancesPath, "reconcile", "ID", "ask its adapter whether it exists; correct Agora's record"),
			},
		},
		leaf(nil, "orphans", "[--apply]", "Vault secrets no record points to, and bindings whose credentials are gone; repaired only with --apply"),
		upgradeCommand("admin"),
	}
}
