package webhook

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// The memory a review is reckoned to take (nodeBytes a node, and its bytes once more for the
// strings) is at least what its parsed tree holds, whatever the object's shape: the bound on
// reviews in flight is a bound on memory only if this holds.
func TestReviewMemory(t *testing.T) {
	env := func(containers, vars int) string {
		var cs []string
		for i := range containers {
			var env []string
			for j := range vars {
				env = append(env, fmt.Sprintf(`{"name":"VAR_%d","value":"value-%d-%d"}`, j, i, j))
			}
			cs = append(cs, fmt.Sprintf(`{"name":"c%d","image":"ghcr.io/acme/app%d:1","env":[%s]}`, i, i, strings.Join(env, ",")))
		}
		return `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web"},"spec":{"containers":[` + strings.Join(cs, ",") + `]}}`
	}
	var unique []string
	for i := range 100000 {
		unique = append(unique, fmt.Sprintf(`"key-%d":"v"`, i))
	}
	for _, tc := range []struct{ name, json string }{
		{"Pod of 1,000 containers of 100 variables", env(1000, 100)},
		{"300,000 numbers", `{"a":[` + strings.Repeat("1,", 300000) + `1]}`},
		{"300,000 empty strings", `{"a":[` + strings.Repeat(`"",`, 300000) + `""]}`},
		{"300,000 empty lists", `{"a":[` + strings.Repeat(`[],`, 300000) + `[]]}`},
		{"100,000 keys", `{"metadata":{"annotations":{` + strings.Join(unique, ",") + `}}}`},
		{"nested 990 deep, 300 times", `{"a":[` + strings.Repeat(`{"a":`, 990) + `1` + strings.Repeat(`}`, 990) + strings.Repeat(`,`+strings.Repeat(`[`, 990)+`"x"`+strings.Repeat(`]`, 990), 299) + `]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := []byte(tc.json)
			nodes := growEvery // the last nodes, fewer than growEvery, are not reported
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			obj, err := parseObject(raw, func(n int) error { nodes += n; return nil })
			if err != nil {
				t.Fatal(err)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			runtime.KeepAlive(obj)
			live := int64(after.HeapAlloc) - int64(before.HeapAlloc)
			reckoned := int64(len(raw)) + int64(nodes)*nodeBytes
			t.Logf("%d bytes, %d nodes: %.1f MB live, %.1f MB reckoned (%.0f%%)", len(raw), nodes, float64(live)/1e6, float64(reckoned)/1e6, 100*float64(live)/float64(reckoned))
			if live > reckoned {
				t.Errorf("the tree holds %d bytes, more than the %d reckoned", live, reckoned)
			}
		})
	}
}
