// Package model_test is a model-based, differential test of digester's three front ends: random
// small packages (Pods, Deployments, CronJobs, Lists, Argo Workflows, kustomize images: entries,
// ConfigMaps that only look like images; references in several spellings of one image, unpinned,
// pinned to the current digest, an old one, one platform's image or another image's; template
// variables; comments, quoting, flow style, folded scalars) are pinned under random settings
// (platform, skip-prefixes, lock, pinned, mirrors, on-error, mode) by the command line
// (cli.Main, on files and on stdin), the KRM function (the built binary, a ResourceList on stdin
// as kpt sends it, registries reached by name through an HTTPS proxy) and, for Pods, the
// admission webhook (webhook.NewHandler), against a loopback registry whose tags move between
// runs. Each case checks what a user would read as a promise (props_test.go): the front ends
// agree, only image values change, a digest written is one the registry served for that tag and
// platform, the lock keeps what is in use and agrees with a fresh run, check passes after pin,
// and more.
//
// `go test ./e2e/model` runs a bounded number of cases from a random base seed; a failing case
// prints its seed. Re-run one with MODEL_SEED=N (or -args -seed N); MODEL_CASES=N (-args -cases N)
// runs more (make stress). TestRegressions holds minimal cases, one per bug the model found.
package model_test

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	seedFlag  = flag.Int64("seed", 0, "run the case of this seed only (or MODEL_SEED)")
	casesFlag = flag.Int("cases", 0, "how many random cases to run (or MODEL_CASES; default 25)")
)

// defaultCases keeps `make test` short: about 25 s on a loaded 2-core machine.
const defaultCases = 25

// seeds returns the seeds to run: one given, or a run of consecutive seeds from a random base.
func seeds(t *testing.T) []int64 {
	one := *seedFlag
	if s := os.Getenv("MODEL_SEED"); s != "" && one == 0 {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("MODEL_SEED=%q: %v", s, err)
		}
		one = n
	}
	if one != 0 {
		return []int64{one}
	}
	n := *casesFlag
	if s := os.Getenv("MODEL_CASES"); s != "" && n == 0 {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			t.Fatalf("MODEL_CASES=%q: %v", s, err)
		}
	}
	if n == 0 {
		n = defaultCases
	}
	// make test runs the same cases every time, so that it fails only when digester changed;
	// make stress (MODEL_RANDOM=1) explores new ones.
	base := int64(fixedBase)
	if os.Getenv("MODEL_RANDOM") != "" {
		base = time.Now().UnixNano()%1_000_000_000 + 1
	}
	out := make([]int64, n)
	for i := range out {
		out[i] = base + int64(i)
	}
	return out
}

// fixedBase is the first seed of make test's cases.
const fixedBase = 1000

// TestModel runs random cases, each from its own seed.
func TestModel(t *testing.T) {
	ss := seeds(t)
	t.Logf("seeds %d to %d", ss[0], ss[len(ss)-1])
	for _, seed := range ss {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			sc := newGen(seed).scenario()
			sc.name = fmt.Sprintf("seed %d", seed)
			check(t, sc, fmt.Sprintf("MODEL_SEED=%d go test ./e2e/model -run 'TestModel$'", seed))
		})
	}
}

// check runs a scenario and reports every property it breaks, with how to run it again.
func check(t *testing.T, sc *scenario, rerun string) {
	t.Helper()
	c := newCase(t, sc)
	c.run()
	if len(c.problems) == 0 {
		return
	}
	t.Errorf("%s: %d broken promises:\n%s\n\n%s\nre-run: %s", sc.name, len(c.problems),
		strings.Join(c.problems, "\n"), c.describe(), rerun)
}
