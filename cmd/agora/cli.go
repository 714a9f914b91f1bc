package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// command is one entry of agora's command table (commands.go), in the
// style of Caddy's cmd/commands.go: everything help, suggestions and shell
// completion need, next to the function that does the work. A command has
// either Run (a leaf) or Subcommands (a group such as producer or admin).
type command struct {
	Name string
	// Args is what follows the command's path in its usage line, such as
	// "[-config agora.yml]" or "NAME --contact EMAIL".
	Args string
	// Short is the one line shown in the parent's list of commands.
	Short string
	// Long is the rest of the help text, shown by -h; optional.
	Long string
	// Flags declares the command's flags on fs. The run function declares
	// them through the same function, so help and completion show exactly
	// what the command parses.
	Flags func(fs *flag.FlagSet)
	// Run does the work with the arguments after the command's path.
	Run         func(ctx context.Context, args []string, s streams) error
	Subcommands []command
}

// streams are the standard streams a command talks to; tests give buffers.
type streams struct {
	in          io.Reader
	out, errOut io.Writer
}

// dispatch walks the table along args and runs the command it finds. Help
// (-h, --help, or `help` in a group) goes to stdout and is not an error;
// an unknown name says so once, with the nearest known one.
func dispatch(ctx context.Context, root command, args []string, s streams) int {
	cmd, path, rest := root, []string{root.Name}, args
	for len(cmd.Subcommands) > 0 {
		if len(rest) == 0 {
			fmt.Fprintf(s.errOut, "%s: missing command\n\n", strings.Join(path, " "))
			printHelp(s.errOut, cmd, path)
			return 2
		}
		name := rest[0]
		if name == "help" || isHelpFlag(name) {
			// `agora help producer login` is `agora producer login -h`.
			if name == "help" && len(rest) > 1 {
				rest = append(rest[1:len(rest):len(rest)], "-h")
				continue
			}
			printHelp(s.out, cmd, path)
			return 0
		}
		sub, ok := cmd.sub(name)
		if !ok {
			fmt.Fprintf(s.errOut, "%s: unknown command %q%s\n\n", strings.Join(path, " "), name, suggestion(name, cmd.names()))
			printHelp(s.errOut, cmd, path)
			return 2
		}
		cmd, path, rest = sub, append(path, name), rest[1:]
	}
	if wantsHelp(rest) {
		printHelp(s.out, cmd, path)
		return 0
	}
	if err := cmd.Run(ctx, rest, s); err != nil {
		fmt.Fprintf(s.errOut, "%s: %v\n", strings.Join(path, " "), err)
		var usage usageErr
		if errors.As(err, &usage) {
			return 2
		}
		return 1
	}
	return 0
}

func isHelpFlag(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help"
}

// wantsHelp reports whether a leaf's arguments ask for help: -h anywhere
// before a "--", as the flag package would have found it.
func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if isHelpFlag(a) {
			return true
		}
	}
	return false
}

func (c command) sub(name string) (command, bool) {
	for _, s := range c.Subcommands {
		if s.Name == name {
			return s, true
		}
	}
	return command{}, false
}

func (c command) names() []string {
	return commandNames(c.Subcommands)
}

// flagSet is the command's flags, declared for help or completion.
func (c command) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet(c.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if c.Flags != nil {
		c.Flags(fs)
	}
	return fs
}

// printHelp prints a command's usage line, its text, and its subcommands
// or flags.
func printHelp(w io.Writer, c command, path []string) {
	usage := strings.Join(path, " ")
	if len(c.Subcommands) > 0 {
		usage += " <command>"
	}
	if c.Args != "" {
		usage += " " + c.Args
	}
	fmt.Fprintf(w, "Usage: %s\n\n", usage)
	if c.Short != "" {
		fmt.Fprintf(w, "%s%s.\n", strings.ToUpper(c.Short[:1]), c.Short[1:])
	}
	if c.Long != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.Long))
	}
	if len(c.Subcommands) > 0 {
		fmt.Fprintf(w, "\nCommands:\n")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, s := range c.Subcommands {
			fmt.Fprintf(tw, "  %s\t%s\n", s.Name, s.Short)
		}
		_ = tw.Flush()
		fmt.Fprintf(w, "\nRun '%s <command> -h' for a command's help.\n", strings.Join(path, " "))
		return
	}
	fs := c.flagSet()
	if hasFlags(fs) {
		fmt.Fprintf(w, "\nFlags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// suggestion is "; did you mean ...?" with the known name nearest to
// typed, or nothing when none is near enough to be what was meant: a typo
// or two, or a prefix ("stat" for "status").
func suggestion(typed string, known []string) string {
	best, bestDist := "", len(typed)+1
	for _, k := range known {
		if d := editDistance(typed, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if bestDist > max(1, len(typed)/3) {
		best = ""
		for _, k := range known {
			if len(typed) >= 2 && strings.HasPrefix(k, typed) {
				best = k
				break
			}
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

// editDistance is the edit distance between a and b in bytes (command
// names are ASCII): insertions, deletions, substitutions, and swaps of two
// neighbours, the commonest typo ("tset"), each count one.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// walk calls fn for every command in the table, with its path.
func walk(c command, path []string, fn func(c command, path []string)) {
	fn(c, path)
	for _, s := range c.Subcommands {
		walk(s, append(slices.Clip(path), s.Name), fn)
	}
}

// newFlagSet is a command's flag set. It prints nothing: a bad flag comes
// back as the error the dispatcher prints once, and -h never reaches it
// (the table answers help).
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// usageErr is a command line the command cannot run (a bad flag, a
// missing argument): it exits with status 2, not 1, as the table's own
// refusals (an unknown command) do.
type usageErr struct{ err error }

func (e usageErr) Error() string { return e.err.Error() }
func (e usageErr) Unwrap() error { return e.err }

func usageError(format string, a ...any) error {
	return usageErr{fmt.Errorf(format, a...)}
}

// parseFlags parses a command's flags; the flag package's complaint
// becomes a usage error that says where the flags are listed.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return usageErr{fmt.Errorf("%w (agora %s -h lists its flags)", err, fs.Name())}
	}
	return nil
}
