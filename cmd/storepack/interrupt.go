package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/storepack/storepack/export"
	"github.com/storepack/storepack/store/substitute"
)

// interruptGrace is how long an interrupted or timed-out run is given
// to stop by itself (its downloads see their context end and remove what
// they began) before its temporaries are removed under it and the command
// exits.
var interruptGrace = 2 * time.Second

// interruptWait, when set at link time (go build -ldflags
// -X=main.interruptWait=0s), replaces interruptGrace: what the interrupt
// test builds with, to interrupt exports that would finish in the grace.
var interruptWait string

func init() {
	if d, err := time.ParseDuration(interruptWait); err == nil {
		interruptGrace = d
	}
}

// errInterrupted is the cause of a run's context ended by a signal.
type errInterrupted struct{ sig os.Signal }

func (e errInterrupted) Error() string { return fmt.Sprintf("interrupted (%s)", e.sig) }

// exitCode is the status of a command ended by e: 128 + the signal, as
// shells report it.
func (e errInterrupted) exitCode() int {
	if s, ok := e.sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 1
}

// runInterruptible runs do with a context that SIGINT and SIGTERM end.
// When one comes (or ctx ends, a --timeout), do is given interruptGrace
// to return; if it has not, or at a second signal, the run's temporaries
// are removed (removeTemporaries) and the command exits at once, with
// 128 + the signal's number, or 1 for a timeout, its reason on stderr.
//
// do is also given the cancel function of its context, with which a
// --timeout ends it (its cause the reason).
func runInterruptible(ctx context.Context, stderr io.Writer, do func(ctx context.Context, cancel context.CancelCauseFunc) int) int {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	done := make(chan int, 1)
	go func() { done <- do(ctx, cancel) }()
	var deadline <-chan time.Time
	ctxDone := ctx.Done()
	for {
		select {
		case code := <-done:
			return code
		case sig := <-sigs:
			if deadline != nil {
				return abandon(ctx, stderr)
			}
			cancel(errInterrupted{sig})
			deadline = time.After(interruptGrace)
			ctxDone = nil
		case <-ctxDone:
			// A --timeout ended the run's context.
			deadline = time.After(interruptGrace)
			ctxDone = nil
		case <-deadline:
			return abandon(ctx, stderr)
		}
	}
}

// abandon removes the temporaries of a run that did not stop, and gives
// the command's exit status.
func abandon(ctx context.Context, stderr io.Writer) int {
	removeTemporaries()
	cause := context.Cause(ctx)
	fmt.Fprintf(stderr, "storepack: %v; its temporary files are removed\n", cause)
	var ie errInterrupted
	if errors.As(cause, &ie) {
		return ie.exitCode()
	}
	return 1
}

// removeTemporaries removes what the run was writing: temporary outputs
// (out/.NAME.tmp-*) and NARs being unpacked (substitutes/.HASH.tmp-*).
func removeTemporaries() {
	export.RemoveTemporaries()
	substitute.RemoveTemporaries()
}

// errTimeout is the cause of a run's context ended by --timeout.
type errTimeout struct{ d time.Duration }

func (e errTimeout) Error() string { return fmt.Sprintf("timed out after %s (--timeout)", e.d) }

// setTimeout ends e's run after d (0: never): its context's cause says
// so, and runInterruptible gives it interruptGrace to stop.
func (e *env) setTimeout(d time.Duration) {
	if d > 0 && e.cancel != nil {
		time.AfterFunc(d, func() { e.cancel(errTimeout{d}) })
	}
}

// interruptedCode is the exit status of a run that failed once its
// context had ended: 128 + a signal's number, else 0 (not interrupted).
func interruptedCode(ctx context.Context) int {
	var ie errInterrupted
	if ctx != nil && errors.As(context.Cause(ctx), &ie) {
		return ie.exitCode()
	}
	return 0
}
