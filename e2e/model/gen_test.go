package model_test

import (
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// scenario is one case: a package, where its lock comes from, tags that move before the run,
// and the run's settings.
type scenario struct {
	name  string
	files []pkgFile // templates; digests may be symbolic (see resolveSymbols)
	// earlier, if set, is the settings of a `digester pin --lock update` run on the package
	// before this case's run: its lock (and, with keepEarlier, its pinned files) are the package.
	earlier     *settings
	keepEarlier bool
	// hand is a hand-made DigestLock's entries (image, symbolic digest), in handFile ("" for
	// digests.lock.yaml of its own) after the file's documents.
	hand     [][2]string
	handFile string
	// moves are the tags ("path:tag") pushed anew after the lock was made.
	moves    []string
	settings settings
}

// gen makes random scenarios from one seed.
type gen struct {
	r *rand.Rand
	n int // names made so far
}

// newGen returns the generator of seed.
func newGen(seed int64) *gen { return &gen{r: rand.New(rand.NewPCG(uint64(seed), 0x6d6f64656c))} }

// chance is true with probability p.
func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

// pick is one of xs.
func pick[T any](g *gen, xs ...T) T { return xs[g.r.IntN(len(xs))] }

// name is a new resource or container name.
func (g *gen) name(prefix string) string {
	g.n++
	return fmt.Sprintf("%s-%d", prefix, g.n)
}

// spellings are the ways a package writes each repository; rare ones are other spellings of
// Docker Hub.
var spellings = map[string][]string{
	"library/nginx":   {"nginx", "docker.io/library/nginx", "index.docker.io/library/nginx"},
	"library/busybox": {"busybox", "docker.io/library/busybox", "docker.io/busybox"},
	"acme/api":        {"ghcr.io/acme/api"},
	"team0/tool":      {"registry.internal/team0/tool"},
}

var rareSpellings = []string{"registry-1.docker.io/library/nginx", "Docker.io/library/nginx", "docker.io./library/nginx"}

// scenario makes a random case.
func (g *gen) scenario() *scenario {
	sc := &scenario{settings: g.settings()}
	sc.files = g.files()
	switch x := g.r.Float64(); {
	case x < 0.35: // no lock before the run; lock: update may create one
		sc.settings.Lock = pick(g, "", "", "update")
	case x < 0.75: // a lock from an earlier run, with the same settings or others
		s := sc.settings
		if g.chance(0.5) {
			s = g.settings()
		}
		s.Lock, s.Check = "update", false
		if s.Pinned == "verify" {
			s.Pinned = "keep"
		}
		sc.earlier, sc.keepEarlier = &s, g.chance(0.5)
		sc.settings.Lock = pick(g, "", "update", "frozen")
	default: // a hand-made lock
		sc.hand = g.handLock()
		if g.chance(0.15) {
			sc.handFile = sc.files[0].name
		}
		sc.settings.Lock = pick(g, "", "update", "frozen")
	}
	if sc.settings.Lock == "frozen" {
		sc.settings.Pinned = "keep" // frozen sends no request: it refuses verify and refresh
	}
	if (sc.earlier != nil || sc.hand != nil) && g.chance(0.3) || g.chance(0.1) {
		for range 1 + g.r.IntN(2) {
			s := pick(g, catalogue...)
			sc.moves = append(sc.moves, key(s.path, s.tag))
		}
	}
	return sc
}

// settings makes random settings.
func (g *gen) settings() settings {
	s := settings{Pinned: "keep", OnError: "fail"}
	s.Platform = pick(g, "", "", "linux/amd64", "linux/arm64")
	if g.chance(0.25) {
		s.Skip = []string{pick(g, "registry.internal/team0", "ghcr.io/acme", "nginx", "docker.io/", "index.docker.io/library/busybox", "ghcr.io/acme/api")}
	}
	s.Pinned = pick(g, "keep", "keep", "verify", "refresh")
	if g.chance(0.2) {
		s.Mirrors = pick(g, "docker.io=mirror.test", "docker.io=mirror.test/hub", "ghcr.io=mirror.test/ghcr")
		s.Fallback = g.chance(0.4)
	}
	if g.chance(0.3) {
		s.OnError = "warn"
	}
	s.Check = g.chance(0.2)
	return s
}

// files makes a package of two to five files, each of one to three documents.
func (g *gen) files() []pkgFile {
	var files []pkgFile
	names := []string{"a.yaml", "b.yaml", "c.yaml", "apps/web.yaml", "apps/z.yaml"}
	n := 2 + g.r.IntN(4)
	for i := range n {
		var docs []string
		for range 1 + g.r.IntN(3) {
			docs = append(docs, g.doc())
		}
		text := strings.Join(docs, g.separator())
		if g.chance(0.2) {
			text = "---\n" + text
		}
		files = append(files, pkgFile{name: names[i], template: text})
	}
	if g.chance(0.25) {
		name := "kustomization.yaml"
		if g.chance(0.4) {
			name = "kust.yaml" // typed: read as a Kustomization whatever its file's name
		}
		files = append(files, pkgFile{name: name, template: g.kustomization(name != "kustomization.yaml")})
	}
	return files
}

// separator is a document separator, with or without a comment.
func (g *gen) separator() string {
	return pick(g, "---\n", "---\n", "---\n# next\n", "--- # another\n")
}

// doc makes one document of a random kind.
func (g *gen) doc() string {
	switch x := g.r.Float64(); {
	case x < 0.3:
		return g.pod()
	case x < 0.5:
		return g.deployment()
	case x < 0.62:
		return g.cronJob()
	case x < 0.74:
		return g.list()
	case x < 0.86:
		return g.workflow()
	case x < 0.94:
		return g.configMap()
	default:
		return g.widget()
	}
}

// ref is an image field's value as a marker: a reference of the catalogue in one of its
// spellings, unpinned or pinned to a symbolic digest, or a template variable.
func (g *gen) ref() string {
	s := pick(g, catalogue...)
	sp := pick(g, spellings[s.path]...)
	if s.path == "library/nginx" && g.chance(0.08) {
		sp = pick(g, rareSpellings...)
	}
	k := key(s.path, s.tag)
	ref := sp + ":" + s.tag
	if s.tag == "latest" && g.chance(0.5) {
		ref = sp // tag-less: means latest
	}
	switch x := g.r.Float64(); {
	case x < 0.45:
	case x < 0.55:
		ref += "@{cur " + k + "}"
	case x < 0.63 && s.versions > 1:
		ref += "@{old " + k + "}"
	case x < 0.71 && s.index:
		ref += "@{" + pick(g, s.platforms...) + " " + k + "}"
	case x < 0.79 && s.attest:
		ref += "@{unknown/unknown " + k + "}"
	case x < 0.83:
		ref += "@{other " + k + "}"
	case x < 0.84:
		ref += "@{sha512 " + k + "}"
	case x < 0.88:
		ref = sp + "@{cur " + k + "}" // repo@digest: no tag to follow
	case x < 0.91:
		ref = sp + ":9.9" // a tag the registry does not have
	case x < 0.94:
		ref = pick(g, "${IMAGE}", "nginx:${NGINX_TAG}")
	}
	return "«" + ref + "»"
}

// quoted writes a value in a random quoting style (one with braces, a template variable, in
// double quotes: a plain {…} would be a flow mapping).
func (g *gen) quoted(v string) string {
	switch x := g.r.Float64(); {
	case strings.ContainsAny(strings.Trim(v, "«»"), "{}"):
		return `"` + v + `"`
	case x < 0.6:
		return v
	case x < 0.8:
		return "'" + v + "'"
	}
	return `"` + v + `"`
}

// comment is a trailing comment, sometimes.
func (g *gen) comment() string {
	if g.chance(0.2) {
		return pick(g, " # pinned by CI", " #comment", "  # the web tier")
	}
	return ""
}

// containers writes a containers list under key at indent: block, flow items or a flow list,
// with the list indented under its key or not.
func (g *gen) containers(key string, indent int) string {
	pad := strings.Repeat(" ", indent)
	n := 1 + g.r.IntN(2)
	var b strings.Builder
	if g.chance(0.1) {
		var items []string
		for range n {
			items = append(items, fmt.Sprintf("{name: %s, image: %s}", g.name("c"), g.quoted(g.ref())))
		}
		fmt.Fprintf(&b, "%s%s: [%s]%s\n", pad, key, strings.Join(items, ", "), g.comment())
		return b.String()
	}
	fmt.Fprintf(&b, "%s%s:\n", pad, key)
	item := pad
	if g.chance(0.4) {
		item += "  "
	}
	exotic := g.chance(0.04)
	for i := range n {
		// An anchored image and its alias are written in block style (a flow item would leave the
		// alias without its anchor).
		if flow := g.chance(0.15); flow && !exotic {
			fmt.Fprintf(&b, "%s- {name: %s, image: %s}%s\n", item, g.name("c"), g.quoted(g.ref()), g.comment())
			continue
		}
		if g.chance(0.1) {
			fmt.Fprintf(&b, "%s# a container\n", item)
		}
		fmt.Fprintf(&b, "%s- name: %s\n", item, g.name("c"))
		switch {
		case exotic && i == 0 && n == 2:
			fmt.Fprintf(&b, "%s  image: &img %s\n", item, g.ref())
		case exotic && i == 1:
			fmt.Fprintf(&b, "%s  image: *img\n", item)
		case exotic:
			fmt.Fprintf(&b, "%s  image: >-\n%s    %s\n", item, item, g.ref())
		default:
			fmt.Fprintf(&b, "%s  image: %s%s\n", item, g.quoted(g.ref()), g.comment())
		}
		if g.chance(0.3) {
			fmt.Fprintf(&b, "%s  ports:\n%s  - containerPort: 80\n", item, item)
		}
		if g.chance(0.15) {
			fmt.Fprintf(&b, "%s  env:\n%s  - name: BASE_IMAGE\n%s    value: nginx:1.27\n", item, item, item)
		}
	}
	return b.String()
}

// podSpec writes a pod spec's containers (and maybe initContainers) at indent.
func (g *gen) podSpec(indent int) string {
	s := g.containers("containers", indent)
	if g.chance(0.25) {
		s += g.containers("initContainers", indent)
	}
	return s
}

// metadata writes a name and, sometimes, an annotation that names an image but is none.
func (g *gen) metadata(prefix string) string {
	s := "metadata:\n  name: " + g.name(prefix) + g.comment() + "\n"
	if g.chance(0.3) {
		s += "  annotations:\n    example.com/base-image: " + pick(g, "nginx:1.27", "'ghcr.io/acme/api:2.1'") + "\n"
	}
	return s
}

// pod writes a Pod.
func (g *gen) pod() string {
	return "apiVersion: v1\nkind: Pod\n" + g.metadata("pod") + "spec:\n" + g.podSpec(2)
}

// deployment writes a Deployment.
func (g *gen) deployment() string {
	return "apiVersion: apps/v1\nkind: Deployment\n" + g.metadata("web") +
		"spec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n" +
		g.podSpec(6)
}

// cronJob writes a CronJob.
func (g *gen) cronJob() string {
	return "apiVersion: batch/v1\nkind: CronJob\n" + g.metadata("cron") +
		"spec:\n  schedule: \"*/5 * * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: OnFailure\n" +
		g.podSpec(10)
}

// list writes a kind: List of one or two Pods and Deployments.
func (g *gen) list() string {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: List\nitems:\n")
	for range 1 + g.r.IntN(2) {
		doc := g.pod()
		if g.chance(0.5) {
			doc = g.deployment()
		}
		for i, line := range strings.SplitAfter(strings.TrimSuffix(doc, "\n"), "\n") {
			switch {
			case i == 0:
				b.WriteString("- " + line)
			case line == "\n":
				b.WriteString(line)
			default:
				b.WriteString("  " + line)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// workflow writes an Argo Workflow with a folded when: expression whose lines are indented
// more than the first (as argo-workflows' conditionals-complex.yaml has it), a container
// image, and maybe a template variable for an image.
func (g *gen) workflow() string {
	s := "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\n" + g.metadata("wf") +
		`spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - name: flip-coin
        template: flip
    - - name: heads
        template: flip
        when: >-
            ( {{steps.flip-coin.outputs.result}} == heads &&
              {{steps.flip-again.outputs.result}} == tails
            ) ||
            ( {{steps.flip-coin.outputs.result}} == tails &&
              {{steps.flip-again.outputs.result}} == tails )
  - name: flip
    container:
      image: ` + g.quoted(g.ref()) + g.comment() + `
      command: [sh, -c]
      args: ["echo heads"]
`
	if g.chance(0.3) {
		s += "  - name: param\n    inputs:\n      parameters:\n      - name: image\n    script:\n      image: \"«{{inputs.parameters.image}}»\"\n      source: |\n        echo hi\n"
	}
	return s
}

// configMap writes data that looks like images but is not at an image field, and a folded
// scalar with more-indented lines.
func (g *gen) configMap() string {
	return "apiVersion: v1\nkind: ConfigMap\n" + g.metadata("cm") + `data:
  IMAGE: nginx:1.27
  image: "ghcr.io/acme/api:2.1"
  expr: >-
      ( a &&
        b
      ) || c
  script: |
    #!/bin/sh
      indented
    done
`
}

// widget is a custom kind with an image: key where digester does not look (a warning, no pin).
func (g *gen) widget() string {
	return "apiVersion: example.com/v1\nkind: Widget\n" + g.metadata("widget") + "spec:\n  image: busybox:1.36\n  size: 3\n"
}

// kustomization writes a kustomization with images: entries, typed or as kustomization.yaml.
func (g *gen) kustomization(typed bool) string {
	var b strings.Builder
	if typed {
		b.WriteString("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n")
	}
	b.WriteString("resources:\n- a.yaml\nimages:\n")
	for range 1 + g.r.IntN(2) {
		s := pick(g, catalogue...)
		name := pick(g, spellings[s.path]...)
		fmt.Fprintf(&b, "- name: %s\n", name)
		if g.chance(0.2) {
			fmt.Fprintf(&b, "  newName: %s\n", pick(g, spellings[s.path]...))
		}
		fmt.Fprintf(&b, "  newTag: %s%s\n", pick(g, `"`+s.tag+`"`, "'"+s.tag+"'"), g.comment())
	}
	if g.chance(0.3) {
		b.WriteString("- name: busybox\n  newTag: \"1.36\"\n  digest: sha256:" + strings.Repeat("ab", 32) + "\n")
	}
	return b.String()
}

// handLock makes a hand-made lock: some catalogue references, in any spelling (tag-less too),
// with current, old, per-platform or foreign digests.
func (g *gen) handLock() [][2]string {
	var out [][2]string
	for range 1 + g.r.IntN(4) {
		s := pick(g, catalogue...)
		k := key(s.path, s.tag)
		img := pick(g, spellings[s.path]...) + ":" + s.tag
		if s.tag == "latest" && g.chance(0.5) {
			img = strings.TrimSuffix(img, ":latest")
		}
		d := "{cur " + k + "}"
		switch x := g.r.Float64(); {
		case x < 0.2 && s.versions > 1:
			d = "{old " + k + "}"
		case x < 0.4 && s.index:
			d = "{" + pick(g, s.platforms...) + " " + k + "}"
		case x < 0.5:
			d = "{other " + k + "}"
		}
		out = append(out, [2]string{img, d})
	}
	return out
}

var symbolRE = regexp.MustCompile(`\{(cur|old|other|sha512|[a-z]+/[a-z0-9]+) ([^ {}]+)\}`)

// resolveSymbols replaces each symbolic digest with the world's: {cur K} the tag K's current
// digest (its index, for an index), {old K} the one before, {linux/arm64 K} the current index's
// image for that platform, {other K} another tag's current digest, {sha512 K} a sha512 digest.
func resolveSymbols(t *testing.T, w *world, s string) string {
	t.Helper()
	return symbolRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := symbolRE.FindStringSubmatch(m)
		vs := w.versions(sub[2])
		if len(vs) == 0 {
			t.Fatalf("symbol %s: no tag %s", m, sub[2])
		}
		cur := vs[len(vs)-1]
		switch sub[1] {
		case "cur":
			d, _ := cur.forPlatform("")
			return d
		case "old":
			if len(vs) < 2 {
				t.Fatalf("symbol %s: the tag has one version", m)
			}
			d, _ := vs[len(vs)-2].forPlatform("")
			return d
		case "sha512": // a digest no registry here serves, in the other algorithm references allow
			sum := sha512.Sum512([]byte(sub[2]))
			return "sha512:" + hex.EncodeToString(sum[:])
		case "other":
			for _, s := range catalogue {
				if k := key(s.path, s.tag); k != sub[2] && !strings.HasPrefix(k, strings.Split(sub[2], ":")[0]+":") {
					d, _ := w.current(k, "")
					return d
				}
			}
		}
		d, ok := cur.children[sub[1]]
		if !ok {
			t.Fatalf("symbol %s: no image for %s", m, sub[1])
		}
		return d
	})
}

// lockText writes a DigestLock with entries, as a user would by hand: one entry per reference
// (a lock that lists one reference twice, differently, cannot be read, as the README says).
func lockText(entries [][2]string) string {
	var b strings.Builder
	b.WriteString("apiVersion: fn.kpt.dev/v1alpha1\nkind: DigestLock\nmetadata:\n  name: digests\n  annotations:\n    config.kubernetes.io/local-config: \"true\"\nimages:\n")
	seen := map[string]bool{}
	for _, e := range entries {
		if seen[normalise(e[0])] {
			continue
		}
		seen[normalise(e[0])] = true
		fmt.Fprintf(&b, "- image: %s\n  digest: %s\n", e[0], e[1])
	}
	return b.String()
}
