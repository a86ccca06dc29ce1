package resolver

import (
	"net/http"
	"testing"
	"time"
)

// TestShorten: a long registry message is cut on a rune boundary at most n bytes in, even at the
// exact length and when the bytes are not valid UTF-8.
func TestShorten(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 3, "abc"},
		{"abcd", 3, "abc…"},
		{"aé", 2, "a…"},   // é is two bytes: never cut in half
		{"aéb", 3, "aé…"}, // the cut falls after é
		{"\x80\x80\x80\x80", 2, "…"},
	} {
		if got := shorten(tc.in, tc.n); got != tc.want {
			t.Errorf("shorten(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

// TestDefaultBackoff: by default the waits between attempts without a Retry-After start at most
// 250 ms and double each time (full jitter: any wait up to the bound), below the longest wait.
func TestDefaultBackoff(t *testing.T) {
	r := New()
	rt := &retry{attempts: r.attempts, maxWait: r.maxWait, base: r.backoff}
	resp := &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{}}
	for attempt := 1; attempt < r.attempts; attempt++ {
		bound := 250 * time.Millisecond << (attempt - 1)
		for range 50 {
			wait, again := rt.shouldRetry(resp, nil, attempt)
			if !again || wait <= 0 || wait > bound {
				t.Fatalf("attempt %d: wait %v, retry %v; want a retry after at most %v", attempt, wait, again, bound)
			}
		}
	}
	if _, again := rt.shouldRetry(resp, nil, r.attempts); again {
		t.Errorf("attempt %d of %d is retried", r.attempts, r.attempts)
	}
}

// TestZeroFirstBackoff: a first backoff of 0 (WithRetries(n, max, 0)) waits up to the longest wait
// instead of failing.
func TestZeroFirstBackoff(t *testing.T) {
	rt := &retry{attempts: 3, maxWait: 200 * time.Millisecond}
	resp := &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{}}
	if wait, again := rt.shouldRetry(resp, nil, 1); !again || wait <= 0 || wait > rt.maxWait {
		t.Errorf("wait %v, retry %v; want a retry after at most %v", wait, again, rt.maxWait)
	}
}
