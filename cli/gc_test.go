package cli

import (
	"runtime"
	"runtime/debug"
	"testing"
)

// gcPercent reads the collector's percent.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// TestPacer: while the live heap is under gcFloor, the heap may grow by gcFloor between
// collections; once it is over, by its live size (the default, 100 %); stop puts back the percent
// it found.
func TestPacer(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(250))
	runtime.GC()
	p := startPacing()
	p.pace()
	if got := gcPercent(); got <= 100 {
		t.Errorf("percent %d with a small live heap, want more than 100", got)
	}
	live := make([]byte, 2*gcFloor)
	for i := range live {
		live[i] = 1 // touched, as a live heap is
	}
	runtime.GC()
	p.pace()
	if got := gcPercent(); got != 100 {
		t.Errorf("percent %d with a live heap of twice the floor, want 100", got)
	}
	runtime.KeepAlive(live)
	p.stop()
	if got := gcPercent(); got != 250 {
		t.Errorf("percent %d after stop, want 250, as before", got)
	}
}
