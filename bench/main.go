// Command bench measures digester against its floor, a no-op function on the same SDK.
//
// It starts an in-process registry on loopback with injectable latency, generates packages of
// several sizes (see bench/gen), and runs bin/digester and bench/noop on the same ResourceList
// through stdin, several times each, interleaved. It checks every digester output is correctly
// pinned, counts the registry requests of each run, and prints one table: median wall time and
// peak RSS, requests, and the ratios to the floor, where
//
//	floor time   = the no-op's median wall time + ceil(distinct / 16) × latency
//	floor memory = the no-op's median peak RSS
//
// and peak RSS is also bound by the ResourceList's size: at most 8 bytes per input byte + 24 MiB.
//
// Then it measures the command line on a tree of files (-cli resources in -cli-files files, by
// default 100,000 in 2,000): `digester pin DIR` on the package as generated, and `digester check
// DIR` on it pinned, each file compared byte for byte with the pinned package after every run.
// There is no floor for these rows: they give time per resource and peak RSS per input byte
// (all files' bytes), for the command line's target of memory that follows the largest file and
// the image fields, not the package (issue 20).
//
// Run it with `make bench` or `go run ./bench -digester bin/digester`. It exits 1 if an output is
// wrong or a request target is missed; time and memory targets are reported, not enforced,
// because they depend on the machine.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/digester/digester/bench/gen"
	"github.com/digester/digester/internal/registrytest"
)

// Targets (issue 4; the input-bound memory target, issue 20).
const (
	timeTarget   = 1.15
	memoryTarget = 1.10
	// perInputByte and fixedKiB bound peak RSS by the ResourceList's size: 8 bytes a byte + 24 MiB.
	perInputByte = 8
	fixedKiB     = 24 << 10
	lanes        = 16 // the default per-registry concurrency, the floor's parallelism
)

func main() {
	if len(os.Args) >= 4 && os.Args[1] == "spawn" {
		os.Exit(spawn(os.Args[2], os.Args[3], os.Args[4:]...))
	}
	digester := flag.String("digester", "bin/digester", "the digester binary to measure")
	sizes := flag.String("sizes", "100,1000,5000,20000", "package sizes, in resources")
	latencies := flag.String("latencies", "0,20ms", "registry latencies to run each size at")
	reps := flag.Int("reps", 5, "runs of each binary per row, at most 3 above 5,000 resources; the median is reported")
	cliResources := flag.Int("cli", 100000, "resources of the command line's rows (digester pin DIR, digester check DIR); 0: none")
	cliFiles := flag.Int("cli-files", 2000, "files the command line's resources are written to")
	flag.Parse()
	if err := run(*digester, *sizes, *latencies, *reps, cliTree{*cliResources, *cliFiles}, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type row struct {
	mode                        gen.Mode
	resources, distinct, fields int
	inputBytes                  int
	files, largest              int // the command line's rows: files, and the largest one's bytes
	latency                     time.Duration
	wall, floor                 time.Duration
	cpu                         time.Duration // user + system time (the command line's rows)
	rss, floorRSS               int64         // KiB
	requests, manifests, gets   int
	pings                       int
	problems                    []string
}

func run(digester, sizeList, latencyList string, reps int, cli cliTree, stdout io.Writer) error {
	var sizes []int
	var err error
	if sizeList != "" { // "": only the command line's rows
		if sizes, err = parseList(sizeList, strconv.Atoi); err != nil {
			return fmt.Errorf("-sizes: %w", err)
		}
	}
	lats, err := parseList(latencyList, parseDuration)
	if err != nil {
		return fmt.Errorf("-latencies: %w", err)
	}
	if _, err := os.Stat(digester); err != nil {
		return fmt.Errorf("%w (run make build first)", err)
	}
	tmp, err := os.MkdirTemp("", "digester-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	noop := filepath.Join(tmp, "noop")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", noop, "./bench/noop")
	build.Env = append(os.Environ(), "CGO_ENABLED=0") // built as bin/digester is
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build the no-op function: %w", err)
	}
	// No host credentials: the keychain finds an empty Docker config, as on a fresh CI runner.
	env := append(os.Environ(), "DOCKER_CONFIG="+tmp, "SKIP_PREFIXES=")

	reg := registrytest.New()
	defer reg.Close()
	imgs, err := gen.Push(reg, gen.Distinct(slices.Max(append(sizes, cli.resources))))
	if err != nil {
		return err
	}

	var rows []row
	failed := false
	for _, n := range sizes {
		pkg := gen.Generate(imgs[:gen.Distinct(n)], n)
		for _, lat := range lats {
			for _, m := range []gen.Mode{gen.Pin, gen.Check, gen.Lock} {
				if m != gen.Pin && lat != slices.Max(lats) {
					continue // no request is made: one latency shows that none is waited for
				}
				reg.SetLatency(lat)
				r, err := measure(reg, pkg, m, digester, noop, env, repsFor(n, reps))
				if err != nil {
					return fmt.Errorf("%d resources, latency %s, %s: %w", n, lat, m, err)
				}
				r.latency = lat
				if m == gen.Pin {
					r.floor += time.Duration((pkg.Distinct+lanes-1)/lanes) * lat
				}
				rows = append(rows, r)
				failed = failed || len(r.problems) > 0
				fmt.Fprintf(os.Stderr, "bench: %d resources, latency %s, %s: wall %s, floor %s\n", n, lat, m, r.wall.Round(time.Millisecond), r.floor.Round(time.Millisecond))
			}
		}
	}
	var cliRows []row
	if cli.resources > 0 {
		lat := slices.Max(lats)
		reg.SetLatency(lat)
		pkg := gen.Generate(imgs[:gen.Distinct(cli.resources)], cli.resources)
		files := pkg.Files(cli.files)
		for _, m := range []gen.Mode{gen.Pin, gen.Check} {
			r, err := measureCLI(reg, pkg, files, m, digester, env, tmp, repsFor(cli.resources, reps))
			if err != nil {
				return fmt.Errorf("command line, %d resources in %d files, %s: %w", cli.resources, cli.files, m, err)
			}
			r.latency = lat
			cliRows = append(cliRows, r)
			failed = failed || len(r.problems) > 0
			fmt.Fprintf(os.Stderr, "bench: command line, %d resources in %d files, latency %s, %s: wall %s, CPU %s, peak RSS %s\n", cli.resources, len(files.Names), lat, m, r.wall.Round(time.Millisecond), r.cpu.Round(time.Millisecond), mib(r.rss))
		}
	}
	reg.SetLatency(0)
	if len(rows) > 0 {
		printTable(stdout, rows)
	}
	if len(cliRows) > 0 {
		printCLITable(stdout, cliRows)
	}
	if failed {
		return fmt.Errorf("some rows missed a request target or produced wrong output (see notes)")
	}
	return nil
}

// repsFor keeps `make bench` within about ten minutes on two cores: large packages take seconds a run.
func repsFor(resources, reps int) int {
	if resources > 5000 {
		return max(min(reps, 3), 1)
	}
	return max(reps, 1)
}

// measure runs the no-op and digester reps times each, interleaved, and returns their medians.
func measure(reg *registrytest.Registry, pkg *gen.Package, m gen.Mode, digester, noop string, env []string, reps int) (row, error) {
	input := pkg.InputFor(m)
	r := row{mode: m, resources: pkg.Resources, distinct: pkg.Distinct, fields: pkg.Fields, inputBytes: len(input)}
	var walls, floors []time.Duration
	var rsss, floorRSSs []int64
	var first []byte
	for i := range reps {
		_, wall, rss, _, err := exe(noop, env, input)
		if err != nil {
			return r, fmt.Errorf("no-op: %w", err)
		}
		floors, floorRSSs = append(floors, wall), append(floorRSSs, rss)

		reg.Reset()
		out, wall, rss, _, err := exe(digester, env, input)
		if err != nil {
			return r, fmt.Errorf("digester: %w", err)
		}
		walls, rsss = append(walls, wall), append(rsss, rss)
		reqs := reg.Requests()
		if i == 0 || !bytes.Equal(out, first) {
			if err := pkg.Check(out, m); err != nil {
				return r, fmt.Errorf("digester's output is wrong: %w", err)
			}
			first = out
		}
		r.count(reqs)
	}
	r.wall, r.floor = median(walls), median(floors)
	r.rss, r.floorRSS = median(rsss), median(floorRSSs)
	r.targets(m, pkg.Distinct)
	return r, nil
}

// count adds a run's requests to the row: the worst run's, since a target holds only if it holds
// every time.
func (r *row) count(reqs []registrytest.Request) {
	var manifests, gets, pings int
	for _, q := range reqs {
		switch q.Kind() {
		case "manifest":
			manifests++
			if q.Method == http.MethodGet {
				gets++
			}
		case "ping":
			pings++
		}
	}
	r.requests = max(r.requests, len(reqs))
	r.manifests, r.gets, r.pings = max(r.manifests, manifests), max(r.gets, gets), max(r.pings, pings)
}

// targets notes the request targets the row missed.
func (r *row) targets(m gen.Mode, distinct int) {
	if m != gen.Pin && r.requests > 0 {
		r.problems = append(r.problems, fmt.Sprintf("%d registry requests where none is needed", r.requests))
	}
	if r.manifests > distinct {
		r.problems = append(r.problems, fmt.Sprintf("%d manifest requests for %d distinct references", r.manifests, distinct))
	}
	if r.gets > 0 {
		r.problems = append(r.problems, fmt.Sprintf("%d manifest GETs although HEAD works", r.gets))
	}
	if r.pings > 1 {
		r.problems = append(r.problems, fmt.Sprintf("%d pings of one registry", r.pings))
	}
	if other := r.requests - r.manifests - r.pings; other > 0 {
		r.problems = append(r.problems, fmt.Sprintf("%d requests other than pings and manifests (the registry needs no token)", other))
	}
}

// cliTree is the command line's rows' package: resources in files.
type cliTree struct{ resources, files int }

// measureCLI runs digester pin DIR (or digester check DIR on the pinned files) reps times on the
// package written as files, and returns the medians. Before each pin the files are written anew;
// after each run every file must be exactly as digester pins it.
func measureCLI(reg *registrytest.Registry, pkg *gen.Package, files *gen.Files, m gen.Mode, digester string, env []string, tmp string, reps int) (row, error) {
	dir := filepath.Join(tmp, "cli-"+string(m))
	defer os.RemoveAll(dir)
	r := row{mode: m, resources: pkg.Resources, distinct: pkg.Distinct, fields: pkg.Fields, files: len(files.Names), largest: files.Largest()}
	var walls, cpus []time.Duration
	var rsss []int64
	for i := range reps {
		if i == 0 || m == gen.Pin {
			n, err := files.Write(dir, m == gen.Check)
			if err != nil {
				return r, err
			}
			r.inputBytes = n
		}
		reg.Reset()
		_, wall, rss, cpu, err := exe(digester, env, nil, string(m), dir)
		if err != nil {
			return r, fmt.Errorf("digester %s: %w", m, err)
		}
		walls, rsss, cpus = append(walls, wall), append(rsss, rss), append(cpus, cpu)
		if err := files.Check(dir); err != nil {
			return r, fmt.Errorf("after digester %s: %w", m, err)
		}
		r.count(reg.Requests())
	}
	r.wall, r.rss, r.cpu = median(walls), median(rsss), median(cpus)
	r.targets(m, pkg.Distinct)
	return r, nil
}

// exe runs bin with input on stdin and returns its stdout, wall time, peak RSS in KiB and CPU
// time (user + system).
//
// It starts bin through a copy of this program in spawn mode: on Linux a child's peak RSS
// counts the memory of the process it was started from (the exec'd process inherits the
// parent's high-water mark), and this process holds the registry and the packages. The small
// spawner makes that inheritance a few MiB, the same for both binaries.
func exe(bin string, env []string, input []byte, args ...string) ([]byte, time.Duration, int64, time.Duration, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, 0, 0, 0, err
	}
	f, err := os.CreateTemp("", "bench-usage-")
	if err != nil {
		return nil, 0, 0, 0, err
	}
	f.Close()
	defer os.Remove(f.Name())
	var out, errb bytes.Buffer
	out.Grow(len(input) * 2)
	cmd := exec.Command(self, append([]string{"spawn", f.Name(), bin}, args...)...)
	cmd.Env = env
	cmd.Stdin = bytes.NewReader(input)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, 0, 0, 0, fmt.Errorf("%s: %w: %s", bin, err, strings.TrimSpace(errb.String()))
	}
	usage, err := os.ReadFile(f.Name())
	if err != nil {
		return nil, 0, 0, 0, err
	}
	var wall, cpu time.Duration
	var rss int64
	if _, err := fmt.Sscan(string(usage), &wall, &rss, &cpu); err != nil {
		return nil, 0, 0, 0, fmt.Errorf("read usage of %s: %w", bin, err)
	}
	return out.Bytes(), wall, rss, cpu, nil
}

// spawn runs bin with args on this process's stdin, stdout and stderr and writes its wall time
// (ns), peak RSS (KiB, from rusage) and CPU time (ns, user + system) to usageFile; it returns
// bin's exit code.
func spawn(usageFile, bin string, args ...string) int {
	cmd := exec.Command(bin, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if cmd.ProcessState == nil {
		fmt.Fprintln(os.Stderr, "bench spawn:", err)
		return 1
	}
	rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss // KiB on Linux
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	if werr := os.WriteFile(usageFile, []byte(fmt.Sprintf("%d %d %d\n", wall.Nanoseconds(), rss, cpu.Nanoseconds())), 0o600); werr != nil {
		fmt.Fprintln(os.Stderr, "bench spawn:", werr)
		return 1
	}
	return cmd.ProcessState.ExitCode()
}

func printTable(w io.Writer, rows []row) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\tresources\tfields\tdistinct\tlatency\twall\tfloor\ttime ratio\trequests\tmanifest req/distinct\tinput\tpeak RSS\tRSS/input\tno-op RSS\tRSS ratio\ttargets\t")
	var notes []string
	for _, r := range rows {
		tr := float64(r.wall) / float64(r.floor)
		mr := float64(r.rss) / float64(r.floorRSS)
		var miss []string
		if tr > timeTarget {
			miss = append(miss, "time")
		}
		if mr > memoryTarget || r.rss > int64(perInputByte*r.inputBytes/1024+fixedKiB) {
			miss = append(miss, "memory")
		}
		if len(r.problems) > 0 {
			miss = append(miss, "requests")
			notes = append(notes, fmt.Sprintf("%d resources, latency %s: %s", r.resources, r.latency, strings.Join(r.problems, "; ")))
		}
		verdict := "met"
		if len(miss) > 0 {
			verdict = "MISSED: " + strings.Join(miss, ", ")
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s\t%.2f\t%d\t%.2f\t%s\t%s\t%.1f\t%s\t%.2f\t%s\t\n",
			r.mode, r.resources, r.fields, r.distinct, r.latency, ms(r.wall), ms(r.floor), tr,
			r.requests, float64(r.manifests)/float64(r.distinct), mib(int64(r.inputBytes/1024)), mib(r.rss),
			float64(r.rss*1024)/float64(r.inputBytes), mib(r.floorRSS), mr, verdict)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nfloor = no-op median wall + ceil(distinct/%d) × latency; targets: time ratio ≤ %.2f, RSS ratio ≤ %.2f,\n", lanes, timeTarget, memoryTarget)
	fmt.Fprintf(w, "peak RSS ≤ %d × input + %d MiB (RSS/input is peak RSS over the ResourceList's bytes),\n", perInputByte, fixedKiB>>10)
	fmt.Fprintln(w, "≤ 1 manifest request per distinct reference, no manifest GET, ≤ 1 ping; requests and RSS are the worst run, times the median.")
	for _, n := range notes {
		fmt.Fprintln(w, "note:", n)
	}
}

// printCLITable prints the command line's rows: no floor (there is no no-op command line), time
// per resource, and peak RSS over the bytes of all files and over the largest file's.
func printCLITable(w io.Writer, rows []row) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "command line\tresources\tfiles\tfields\tdistinct\tlatency\twall\tµs/resource\tCPU\tCPU µs/resource\trequests\tmanifest req/distinct\tinput\tlargest file\tpeak RSS\tRSS/input\tRSS/field\t")
	var notes []string
	for _, r := range rows {
		if len(r.problems) > 0 {
			notes = append(notes, fmt.Sprintf("command line %s: %s", r.mode, strings.Join(r.problems, "; ")))
		}
		fmt.Fprintf(tw, "digester %s DIR\t%d\t%d\t%d\t%d\t%s\t%s\t%.1f\t%s\t%.1f\t%d\t%.2f\t%s\t%.1f KiB\t%s\t%.2f\t%.0f B\t\n",
			r.mode, r.resources, r.files, r.fields, r.distinct, r.latency, ms(r.wall), float64(r.wall.Microseconds())/float64(r.resources),
			ms(r.cpu), float64(r.cpu.Microseconds())/float64(r.resources),
			r.requests, float64(r.manifests)/float64(r.distinct), mib(int64(r.inputBytes/1024)), float64(r.largest)/1024, mib(r.rss),
			float64(r.rss*1024)/float64(r.inputBytes), float64(r.rss*1024)/float64(r.fields))
	}
	tw.Flush()
	fmt.Fprintln(w, "\nCPU is user + system time, which a loaded machine changes less than wall time; RSS/input is")
	fmt.Fprintln(w, "peak RSS over the bytes of all files, RSS/field over the image fields; times and RSS are medians;")
	fmt.Fprintln(w, "check runs on the pinned files; every file is compared with the pinned package byte for byte after each run.")
	for _, n := range notes {
		fmt.Fprintln(w, "note:", n)
	}
}

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + " ms" }

func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

func median[T int64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func parseDuration(s string) (time.Duration, error) {
	if s == "0" {
		return 0, nil
	}
	return time.ParseDuration(s)
}

func parseList[T any](s string, parse func(string) (T, error)) ([]T, error) {
	var out []T
	for _, f := range strings.Split(s, ",") {
		v, err := parse(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty list")
	}
	return out, nil
}
