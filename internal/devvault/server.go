package devvault

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// readyPrefix starts the single stdout line devvault prints once it is ready.
const readyPrefix = "devvault ready addr="

// Timeouts used by Start and Stop.
const (
	startTimeout = 60 * time.Second
	stopTimeout  = 5 * time.Second
)

// Options configure Start.
type Options struct {
	// Addr is the TCP listen address; default "127.0.0.1:0" (a free port).
	Addr string
	// RootToken is the ID of the root token devvault creates; default "root".
	RootToken string
	// Stderr receives devvault's stderr (Vault's log); default io.Discard.
	Stderr io.Writer
}

// Server is a running devvault process.
type Server struct {
	// Addr is the base URL, e.g. "http://127.0.0.1:8200".
	Addr string
	// RootToken is a working root token.
	RootToken string

	cmd     *exec.Cmd
	stderr  *tailBuffer
	exited  chan struct{} // closed once the process has exited and been reaped
	waitErr error         // valid after exited is closed

	mu      sync.Mutex
	stopped bool
}

// Start runs the devvault binary at binPath and waits until it reports that
// it is ready (or until ctx is done, or 60 seconds have passed). ctx bounds
// the start-up only; the server runs until Stop or Kill. devvault is passed
// -parent-pid os.Getpid(), so it exits by itself if this process dies.
// Errors include the tail of devvault's stderr.
func Start(ctx context.Context, binPath string, opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.RootToken == "" {
		opts.RootToken = "root"
	}
	if opts.Stderr == nil {
		opts.Stderr = io.Discard
	}

	s := &Server{
		RootToken: opts.RootToken,
		stderr:    &tailBuffer{},
		exited:    make(chan struct{}),
	}
	cmd := exec.Command(binPath,
		"-addr", opts.Addr,
		"-root-token", opts.RootToken,
		"-parent-pid", strconv.Itoa(os.Getpid()),
	)
	cmd.Stdin = nil
	cmd.Stderr = stderrWriter{tail: s.stderr, w: opts.Stderr}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("devvault: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("devvault: start %s: %w", binPath, err)
	}
	s.cmd = cmd

	ready := make(chan string, 1)
	stdoutDone := make(chan struct{})
	go func() {
		defer close(stdoutDone)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), readyPrefix); ok {
				select {
				case ready <- strings.TrimSpace(addr):
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout) // keep draining after a scan error
	}()
	go func() {
		<-stdoutDone // all reads from the pipe must finish before Wait
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()

	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	var why string
	select {
	case addr := <-ready:
		s.Addr = addr
		return s, nil
	case <-s.exited:
		why = fmt.Sprintf("exited before becoming ready (%v)", s.waitErr)
	case <-ctx.Done():
		why = fmt.Sprintf("start-up interrupted: %v", ctx.Err())
	case <-timer.C:
		why = fmt.Sprintf("not ready after %s", startTimeout)
	}
	_ = s.Kill()
	return nil, fmt.Errorf("devvault: %s%s", why, s.stderrTail())
}

// Stop sends SIGTERM, waits up to 5 seconds for the process to exit, then
// sends SIGKILL. It returns once the process is gone (no orphan remains).
// Stop is idempotent; an error is returned only if devvault did not exit
// cleanly in response to the first Stop.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	select {
	case <-s.exited:
		return nil // already gone, e.g. after Kill
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		// e.g. no SIGTERM on this platform; fall through to SIGKILL.
		_ = s.cmd.Process.Kill()
	}
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-s.exited:
		if s.waitErr != nil {
			return fmt.Errorf("devvault: unclean exit after SIGTERM: %v%s", s.waitErr, s.stderrTail())
		}
		return nil
	case <-timer.C:
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	return fmt.Errorf("devvault: did not exit within %s of SIGTERM; killed%s", stopTimeout, s.stderrTail())
}

// Kill sends SIGKILL and waits for the process to be gone. It is used by
// tests that simulate Vault dying. Kill is idempotent.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	select {
	case <-s.exited:
		return nil
	default:
	}
	if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("devvault: kill: %w", err)
	}
	<-s.exited
	return nil
}

// Done is closed once the devvault process has exited, for whatever reason.
func (s *Server) Done() <-chan struct{} { return s.exited }

// Stderr returns the last few KiB of devvault's stderr.
func (s *Server) Stderr() string { return s.stderr.String() }

func (s *Server) stderrTail() string {
	t := strings.TrimSpace(s.stderr.String())
	if t == "" {
		return ""
	}
	const max = 4 << 10
	if len(t) > max {
		t = "..." + t[len(t)-max:]
	}
	return "\nvault stderr:\n" + t
}

// stderrWriter feeds the tail buffer and the caller's writer, ignoring the
// latter's errors so a broken writer can never stall devvault on a full pipe.
type stderrWriter struct {
	tail *tailBuffer
	w    io.Writer
}

func (w stderrWriter) Write(p []byte) (int, error) {
	_, _ = w.tail.Write(p)
	_, _ = w.w.Write(p)
	return len(p), nil
}
