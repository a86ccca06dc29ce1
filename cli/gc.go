package cli

import (
	"runtime/debug"
	"runtime/metrics"
)

// gcFloor is how much the heap may grow between collections at least while digester reads the
// files. The core keeps little of what it reads, so the live heap stays small while the parser
// allocates ~30 bytes per byte it reads: with the collector's default pacing (a collection each
// time the heap doubles), check spent ~60 % more CPU time at 100,000 resources than when the heap
// held the package, collecting every few megabytes (docs/performance.md).
const gcFloor = 32 << 20

// gcPacer sets the collector to let the heap grow by gcFloor or by its live size, as by default,
// whichever is more: a collection costs little more with a small live heap, and there are then
// fewer of them.
type gcPacer struct{ old, percent int }

// startPacing starts with the default pacing, which stop puts back.
func startPacing() *gcPacer {
	p := &gcPacer{percent: 100}
	p.old = debug.SetGCPercent(p.percent)
	return p
}

// pace sets the collector's percent for the live heap now.
func (p *gcPacer) pace() {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if percent := max(100, int(100*gcFloor/max(s[0].Value.Uint64(), 1))); percent != p.percent {
		debug.SetGCPercent(percent) // cheap: a lock, no collection while percent rises
		p.percent = percent
	}
}

func (p *gcPacer) stop() { debug.SetGCPercent(p.old) }
