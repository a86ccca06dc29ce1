package resolver

import "testing"

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
