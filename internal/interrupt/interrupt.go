// Package interrupt ends a run of digester when it is told to (SIGINT, SIGTERM), and never in the
// middle of writing what it must write whole.
//
// A signal cancels the run's context at once, which stops registry lookups; a run that is busy
// elsewhere (parsing a large package, reading a stdin that never ends) does not look at its
// context, so if the run has not ended Grace after the signal, the process says so and exits
// with status 1. It waits, though, for a Critical section in progress (the command line's commit
// of its files, the function's write of its output) to end first, and starts none after that.
package interrupt

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Grace is how long a run may take to end by itself after a signal.
const Grace = 1500 * time.Millisecond

// mu is held by a Critical section, and by the watchdog once it has decided to exit.
var mu sync.Mutex

// Critical runs f so that no signal ends the process while f runs: the watchdog of Context waits
// for f to return, and once the watchdog has decided to exit, Critical never runs f.
func Critical(f func()) {
	mu.Lock()
	defer mu.Unlock()
	f()
}

// Context returns a context that SIGINT and SIGTERM cancel, and starts their watchdog: if the run
// has not called done Grace after the signal, the watchdog writes why to stderr and calls exit(1),
// after any Critical section in progress. done stops the watchdog; call it when the run ends.
func Context(parent context.Context, stderr io.Writer, exit func(code int)) (ctx context.Context, done func()) {
	return watch(parent, stderr, exit, Grace, os.Interrupt, syscall.SIGTERM)
}

func watch(parent context.Context, stderr io.Writer, exit func(int), grace time.Duration, sigs ...os.Signal) (context.Context, func()) {
	ctx, cancel := context.WithCancel(parent)
	got := make(chan os.Signal, 1)
	signal.Notify(got, sigs...)
	ended := make(chan struct{})
	go func() {
		var sig os.Signal
		select {
		case sig = <-got:
		case <-ended:
			return
		}
		stoppedBy.Store(name(sig)) // before cancel: whoever sees ctx done sees the signal
		cancel()
		select {
		case <-time.After(grace):
		case <-ended:
			return
		}
		mu.Lock() // held until the process ends
		select {
		case <-ended: // the run ended while a Critical section held the lock
			mu.Unlock()
			return
		default:
		}
		fmt.Fprintf(stderr, "digester: stopped by %s: the run had not ended %s after it\n", name(sig), grace)
		exit(1)
		mu.Unlock() // only a test's exit returns
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			signal.Stop(got)
			close(ended)
			cancel()
		})
	}
}

// Stopped returns "stopped by SIGTERM" (or SIGINT) when a signal has cancelled ctx, a context of
// Context, and nil otherwise: a run that ends after a signal reports that, and writes nothing.
func Stopped(ctx context.Context) error {
	sig, _ := stoppedBy.Load().(string)
	if ctx.Err() == nil || sig == "" {
		return nil
	}
	return fmt.Errorf("stopped by %s", sig)
}

// stoppedBy is the name of the signal that cancelled a Context, "" before one did. (A cancel
// cause would reach the HTTP errors of lookups under way and hide "canceled" from the resolver.)
var stoppedBy atomic.Value

// name is a signal as a user sent it: SIGTERM, SIGINT.
func name(sig os.Signal) string {
	switch sig {
	case syscall.SIGTERM:
		return "SIGTERM"
	case os.Interrupt:
		return "SIGINT"
	}
	return sig.String()
}
