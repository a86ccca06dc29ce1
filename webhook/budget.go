package webhook

import (
	"errors"
	"fmt"
	"sync"
)

// DefaultMaxReviewMemory bounds the memory the reviews in flight take together (see
// WithMaxReviewMemory). It leaves room for an UPDATE review of two 3 MiB objects (the most the API
// server sends) and, with the process's own 30 MB, stays under deploy/webhook's GOMEMLIMIT of
// 200 MiB, which keeps the garbage collector's slack under its memory limit of 256 MiB.
const DefaultMaxReviewMemory = 128 << 20

// What a review is reckoned to take: its body (read, then copied out as the objects, whose strings
// are copied again into the tree), and each node of the trees parsed from it (a yaml.Node is 160
// bytes, plus its place in its parent's list and the allocator's slack). Measured with
// TestReviewMemory: a Pod of 4 MB takes less than this reckons.
const (
	bodyCopies = 3
	nodeBytes  = 192
)

// budget is the memory that the reviews in flight may take, shared by all of them.
type budget struct {
	capacity int64
	mu       sync.Mutex
	used     int64
}

// errBusy says the reviews in flight hold too much of the budget for one more, for now.
var errBusy = errors.New("the webhook is busy with other reviews")

// tooLargeError says a review needs more than the whole budget.
type tooLargeError struct{ need, capacity int64 }

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("the review needs more than the webhook's memory for reviews in flight (%d MiB); it has %d MiB or more", e.capacity>>20, e.need>>20)
}

// outOfMemory says whether err is a budget's: errBusy or a *tooLargeError.
func outOfMemory(err error) bool {
	var tooLarge *tooLargeError
	return errors.Is(err, errBusy) || errors.As(err, &tooLarge)
}

// claim is one review's share of a budget.
type claim struct {
	b    *budget
	held int64
}

// take adds n bytes to the claim, or fails with errBusy or a *tooLargeError.
func (c *claim) take(n int64) error {
	if c.held+n > c.b.capacity {
		return &tooLargeError{need: c.held + n, capacity: c.b.capacity}
	}
	c.b.mu.Lock()
	defer c.b.mu.Unlock()
	if c.b.used+n > c.b.capacity {
		return errBusy
	}
	c.b.used += n
	c.held += n
	return nil
}

// release gives all the claim holds back.
func (c *claim) release() {
	c.b.mu.Lock()
	defer c.b.mu.Unlock()
	c.b.used -= c.held
	c.held = 0
}
