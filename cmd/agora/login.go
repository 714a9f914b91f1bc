package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"golang.org/x/term"

	"github.com/agora-osb/agora/producers"
	"github.com/agora-osb/agora/producers/producerapi"
)

// producerLogin is one saved login of `agora producer login`: a producer
// at one Agora.
type producerLogin struct {
	URL   string `json:"url"`
	Name  string `json:"name"`
	Token string `json:"token"`
}

func (l producerLogin) same(o producerLogin) bool { return l.Name == o.Name && l.URL == o.URL }

// loginFile is the login file: one login per producer and Agora URL, and
// which one the commands act as. A person who works for two teams, or
// against staging and production, keeps every token and switches with
// `agora producer login --as NAME`.
type loginFile struct {
	Active *loginKey       `json:"active,omitempty"`
	Logins []producerLogin `json:"logins"`

	// URL, Name and Token are the file of agora before it kept more than
	// one login; read once and moved into Logins.
	URL   string `json:"url,omitempty"`
	Name  string `json:"name,omitempty"`
	Token string `json:"token,omitempty"`
}

type loginKey struct {
	URL  string `json:"url"`
	Name string `json:"name"`
}

// producerConfigPath is where the logins live: $AGORA_PRODUCER_CONFIG,
// else $XDG_CONFIG_HOME/agora/producer.json, else ~/.config/agora/producer.json.
func producerConfigPath() (string, error) {
	if p := os.Getenv("AGORA_PRODUCER_CONFIG"); p != "" {
		return p, nil
	}
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("find your home directory: %w", err)
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "agora", "producer.json"), nil
}

// readLogins reads the login file (none yet is an empty one), migrating
// the single-login format: its login becomes the active one.
func readLogins() (*loginFile, string, error) {
	path, err := producerConfigPath()
	if err != nil {
		return nil, "", err
	}
	f := &loginFile{}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return f, path, nil
	}
	if err != nil {
		return nil, path, err
	}
	if err := json.Unmarshal(data, f); err != nil {
		return nil, path, fmt.Errorf("%s: %w", path, err)
	}
	if f.URL != "" || f.Name != "" || f.Token != "" {
		old := producerLogin{URL: f.URL, Name: f.Name, Token: f.Token}
		f.URL, f.Name, f.Token = "", "", ""
		if old.URL != "" && old.Name != "" {
			f.put(old)
		}
	}
	return f, path, nil
}

// put saves l as the active login; an earlier login of the same producer
// at the same Agora is replaced, and returned so the caller can say so.
func (f *loginFile) put(l producerLogin) (replaced *producerLogin) {
	f.Active = &loginKey{URL: l.URL, Name: l.Name}
	for i, old := range f.Logins {
		if old.same(l) {
			f.Logins[i] = l
			return &old
		}
	}
	f.Logins = append(f.Logins, l)
	return nil
}

// active is the login the commands act as, if any.
func (f *loginFile) active() (producerLogin, bool) {
	if f.Active == nil {
		return producerLogin{}, false
	}
	for _, l := range f.Logins {
		if l.Name == f.Active.Name && l.URL == f.Active.URL {
			return l, true
		}
	}
	return producerLogin{}, false
}

// find is the saved login of producer name, at url when url is given; a
// name saved for several Agoras needs the url.
func (f *loginFile) find(name, url string) (producerLogin, error) {
	var found []producerLogin
	for _, l := range f.Logins {
		if l.Name == name && (url == "" || l.URL == url) {
			found = append(found, l)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		where := ""
		if url != "" {
			where = " at " + url
		}
		return producerLogin{}, fmt.Errorf("no saved login for producer %s%s (agora producer logins lists them; agora producer login --url URL --name %s adds one)", name, where, name)
	}
	var urls []string
	for _, l := range found {
		urls = append(urls, l.URL)
	}
	return producerLogin{}, fmt.Errorf("producer %s is saved for several Agoras (%s): say which with --url or $AGORA_URL", name, strings.Join(urls, ", "))
}

// write replaces the login file: write then rename, so a crash never
// leaves half a token; 0600 because tokens are credentials.
func (f *loginFile) write(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// saveLogin adds l to the login file as the active login. It returns the
// file's path, the login l replaced (same producer and Agora), and the
// login that was active before, when it was another.
func saveLogin(l producerLogin) (path string, replaced, previous *producerLogin, err error) {
	f, path, err := readLogins()
	if err != nil {
		return path, nil, nil, err
	}
	if before, ok := f.active(); ok && !before.same(l) {
		previous = &before
	}
	replaced = f.put(l)
	return path, replaced, previous, f.write(path)
}

// loadLogin is the login a producer command acts as: the saved login of
// producer as (from --as, else $AGORA_PRODUCER), else the active one;
// $AGORA_URL picks among a producer's Agoras, and $AGORA_URL,
// $AGORA_PRODUCER and $AGORA_PRODUCER_TOKEN override what was saved.
func loadLogin(as string) (producerLogin, error) {
	f, _, err := readLogins()
	if err != nil {
		return producerLogin{}, err
	}
	envURL, envName, envToken := os.Getenv("AGORA_URL"), os.Getenv("AGORA_PRODUCER"), os.Getenv("AGORA_PRODUCER_TOKEN")
	var l producerLogin
	switch name := cmp.Or(as, envName); {
	case as != "":
		if l, err = f.find(as, envURL); err != nil {
			return l, err
		}
	case name != "":
		// A producer named by the environment uses her own saved token,
		// when there is one, not another producer's.
		l, _ = f.find(name, envURL)
		l.Name = name
	default:
		l, _ = f.active()
	}
	if envURL != "" {
		l.URL = envURL
	}
	if envToken != "" {
		l.Token = envToken
	}
	if l.URL == "" || l.Name == "" || l.Token == "" {
		return l, errors.New("not logged in: run `agora producer login --url URL --name NAME` (or set AGORA_URL, AGORA_PRODUCER, AGORA_PRODUCER_TOKEN)")
	}
	return l, nil
}

// readToken reads a producer's token: on a terminal it prompts and reads
// without echo, so the token is not left on the screen or in a recording;
// from a pipe or file it reads the first line plainly.
func readToken(ctx context.Context, stdin io.Reader, prompt io.Writer, name, url string) (string, error) {
	if stdin == nil {
		return "", nil
	}
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fd := int(f.Fd())
		state, err := term.GetState(fd)
		if err != nil {
			return "", fmt.Errorf("read the token: %w", err)
		}
		fmt.Fprintf(prompt, "token of producer %s at %s (input hidden): ", name, url)
		type read struct {
			b   []byte
			err error
		}
		done := make(chan read, 1)
		go func() {
			b, err := term.ReadPassword(fd)
			done <- read{b, err}
		}()
		select {
		case r := <-done:
			fmt.Fprintln(prompt)
			if r.err != nil {
				return "", fmt.Errorf("read the token: %w", r.err)
			}
			return strings.TrimSpace(string(r.b)), nil
		case <-ctx.Done():
			// Ctrl-C reaches agora as a cancelled context, not as the
			// end of the process: give the terminal its echo back.
			_ = term.Restore(fd, state)
			fmt.Fprintln(prompt)
			return "", fmt.Errorf("login cancelled: %w", ctx.Err())
		}
	}
	data, err := io.ReadAll(io.LimitReader(stdin, 4096))
	if err != nil {
		return "", fmt.Errorf("read the token from stdin: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}

// producerLoginCmd checks a token against Agora and saves it as the active
// login, or, with --as, switches to a login saved before.
func producerLoginCmd(ctx context.Context, fs *flag.FlagSet, flags producerOptions, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	url, name, token, output := *flags.url, *flags.name, *flags.token, *flags.output
	if *flags.as != "" {
		if name != "" || token != "" {
			return usageError("login --as NAME switches to a saved login; give --name and a token to add one instead")
		}
		return switchLogin(*flags.as, url, output, stdout)
	}
	if url == "" || name == "" {
		return usageError("login needs --url and --name (or --as NAME to switch to a saved login)")
	}
	token = cmp.Or(token, os.Getenv("AGORA_PRODUCER_TOKEN"))
	if token == "" {
		var err error
		if token, err = readToken(ctx, stdin, stderr, name, url); err != nil {
			return err
		}
	}
	if token == "" {
		return errors.New("login needs a token: --token, $AGORA_PRODUCER_TOKEN, or typed at the prompt")
	}
	c := &producerapi.Client{BaseURL: url, Token: token}
	st, err := c.Status(ctx, name)
	if err != nil {
		return fmt.Errorf("checking the token: %w", err)
	}
	path, replaced, previous, err := saveLogin(producerLogin{URL: url, Name: name, Token: token})
	if err != nil {
		return err
	}
	return emit(stdout, output, st, func(w io.Writer) {
		fmt.Fprintf(w, "logged in to %s as producer %s (%s); saved to %s\n", url, name, st.Producer.State, path)
		sayWhatChanged(w, replaced, previous)
	})
}

// sayWhatChanged tells what a new login did to the ones saved before: a
// replaced token of the same producer, and how to get back to the one that
// was active.
func sayWhatChanged(w io.Writer, replaced, previous *producerLogin) {
	if replaced != nil && replaced.Token != "" {
		fmt.Fprintf(w, "it replaces the token saved before for %s at %s\n", replaced.Name, replaced.URL)
	}
	if previous != nil {
		fmt.Fprintf(w, "your login as %s at %s stays saved: agora producer login --as %s switches back\n", previous.Name, previous.URL, previous.Name)
	}
}

func switchLogin(name, url, output string, stdout io.Writer) error {
	f, path, err := readLogins()
	if err != nil {
		return err
	}
	l, err := f.find(name, url)
	if err != nil {
		return err
	}
	f.Active = &loginKey{URL: l.URL, Name: l.Name}
	if err := f.write(path); err != nil {
		return err
	}
	return emit(stdout, output, loginView{URL: l.URL, Name: l.Name, Active: true}, func(w io.Writer) {
		fmt.Fprintf(w, "now acting as producer %s at %s\n", l.Name, l.URL)
	})
}

// producerRegisterCmd asks Agora for a producer record and saves its
// token as a new login, next to (never over) the logins saved before.
func producerRegisterCmd(ctx context.Context, fs *flag.FlagSet, flags producerOptions, args []string, stdout, stderr io.Writer) error {
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	url := *flags.url
	if url == "" {
		return usageError("register needs --url")
	}
	c := &producerapi.Client{BaseURL: url}
	created, err := c.Register(ctx, producers.CreateRequest{Name: *flags.name, Contact: *flags.contact, Namespace: *flags.namespace})
	if err != nil {
		return err
	}
	path, replaced, previous, err := saveLogin(producerLogin{URL: url, Name: created.Producer.Name, Token: created.Token})
	if err != nil {
		fmt.Fprintf(stderr, "could not save the login (%v): keep the token below\n", err)
	}
	return emit(stdout, *flags.output, created, func(w io.Writer) {
		fmt.Fprintf(w, "registered producer %s (namespace %s): %s until the platform team approves you\n", created.Producer.Name, created.Producer.Namespace, created.Producer.State)
		fmt.Fprintf(w, "your token, shown only this once:\n\n  %s\n\nlogin saved to %s\n", created.Token, path)
		sayWhatChanged(w, replaced, previous)
	})
}

// loginView is a saved login as agora producer logins shows it: never
// its token.
type loginView struct {
	URL    string `json:"url"`
	Name   string `json:"name"`
	Active bool   `json:"active"`
}

// producerLoginsCmd lists the saved logins and which one is active.
func producerLoginsCmd(fs *flag.FlagSet, flags producerOptions, args []string, stdout io.Writer) error {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("logins takes no arguments, got %q", pos)
	}
	f, path, err := readLogins()
	if err != nil {
		return err
	}
	active, _ := f.active()
	views := []loginView{}
	for _, l := range f.Logins {
		views = append(views, loginView{URL: l.URL, Name: l.Name, Active: l.same(active)})
	}
	return emit(stdout, *flags.output, views, func(w io.Writer) {
		if len(views) == 0 {
			fmt.Fprintf(w, "no saved logins in %s: agora producer login --url URL --name NAME adds one\n", path)
			return
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ACTIVE\tPRODUCER\tAGORA")
		for _, v := range views {
			mark := ""
			if v.Active {
				mark = "*"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", mark, v.Name, v.URL)
		}
		_ = tw.Flush()
		if os.Getenv("AGORA_URL") != "" || os.Getenv("AGORA_PRODUCER") != "" || os.Getenv("AGORA_PRODUCER_TOKEN") != "" {
			fmt.Fprintln(w, "\n$AGORA_URL, $AGORA_PRODUCER or $AGORA_PRODUCER_TOKEN is set and overrides the active login")
		}
	})
}
