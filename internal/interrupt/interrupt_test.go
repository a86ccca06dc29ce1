package interrupt

import (
	"bytes"
	"context"
	"sync"
	"syscall"
	"testing"
	"time"
)

// exits records the watchdog's calls of exit.
type exits struct {
	mu    sync.Mutex
	codes []int
	at    time.Time
	done  chan struct{}
}

func newExits() *exits { return &exits{done: make(chan struct{}, 1)} }

func (e *exits) exit(code int) {
	e.mu.Lock()
	e.codes = append(e.codes, code)
	e.at = time.Now()
	e.mu.Unlock()
	e.done <- struct{}{}
}

// raise sends SIGUSR1 to the test process, which watch was told to catch (a SIGTERM that
// arrived after the handler was gone would end the test binary).
func raise(t *testing.T) time.Time {
	t.Helper()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	return time.Now()
}

// TestWatchdogExits: a signal cancels the context at once; a run that does not end within the
// grace period is ended with exit 1 and a message.
func TestWatchdogExits(t *testing.T) {
	var stderr bytes.Buffer
	e := newExits()
	ctx, done := watch(context.Background(), &stderr, e.exit, 200*time.Millisecond, syscall.SIGUSR1)
	defer done()
	sent := raise(t)
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the context was not cancelled by the signal")
	}
	select {
	case <-e.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the watchdog did not exit")
	}
	if waited := e.at.Sub(sent); waited < 200*time.Millisecond {
		t.Errorf("exit after %v, before the grace period of 200ms", waited)
	}
	if want := "digester: stopped by user defined signal 1: the run had not ended 200ms after it\n"; stderr.String() != want || len(e.codes) != 1 || e.codes[0] != 1 {
		t.Errorf("exit %v, stderr %q; want [1], %q", e.codes, stderr.String(), want)
	}
}

// TestWatchdogWaitsForCritical: the watchdog does not exit while a Critical section runs, and
// exits as soon as it ends.
func TestWatchdogWaitsForCritical(t *testing.T) {
	e := newExits()
	_, done := watch(context.Background(), &bytes.Buffer{}, e.exit, 50*time.Millisecond, syscall.SIGUSR1)
	defer done()
	var ended time.Time
	Critical(func() {
		raise(t)
		time.Sleep(500 * time.Millisecond) // ten grace periods
		e.mu.Lock()
		if len(e.codes) > 0 {
			t.Error("the watchdog exited during a Critical section")
		}
		e.mu.Unlock()
		ended = time.Now()
	})
	select {
	case <-e.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the watchdog did not exit after the Critical section")
	}
	if e.at.Before(ended) {
		t.Errorf("exit at %v, before the Critical section ended at %v", e.at, ended)
	}
}

// TestDoneStopsWatchdog: a run that ends within the grace period is not ended by the watchdog.
func TestDoneStopsWatchdog(t *testing.T) {
	e := newExits()
	ctx, done := watch(context.Background(), &bytes.Buffer{}, e.exit, 200*time.Millisecond, syscall.SIGUSR1)
	raise(t)
	<-ctx.Done()
	done()
	time.Sleep(400 * time.Millisecond)
	if len(e.codes) != 0 {
		t.Errorf("exit %v after done", e.codes)
	}
	Critical(func() {}) // the lock is free
}
