package cli

import "testing"

// TestWrap: the help's flag descriptions are wrapped at the width, each line indented; a word
// longer than the width stands on a line of its own, with no empty line before it.
func TestWrap(t *testing.T) {
	for _, tt := range []struct {
		text string
		want string
	}{
		{"aaa bbb ccc", "  aaa bbb\n  ccc\n"},
		{"https://registry.example/a/long/path then words", "  https://registry.example/a/long/path\n  then\n  words\n"},
		{"", "  \n"},
	} {
		if got := wrap(tt.text, "  ", 9); got != tt.want {
			t.Errorf("wrap(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}
