// Package walker finds the container image fields of a Kubernetes object, whatever its kind:
// containers and image volumes of pod specs at the usual places, the places Presets declare for
// Argo Workflows, Tekton, Prometheus Operator and KEDA (matched on group and kind), fields the
// caller declares (kpt set-image's additionalImageFields), kustomize images: entries, and the
// items of a List. With presets on, it also finds the other OCI references a package holds, each
// a Kind of its own that Field.Set writes in its consumer's syntax: Kptfile function images, Helm
// values that split an image (Flux, Argo CD, kustomize helmCharts, a chart's values file), Flux
// OCIRepository refs and containers' RELATED_IMAGE_* variables. One scan of the whole object also
// reports duplicate keys (an error only when they disagree on an image) and image keys at places
// it does not pin.
//
// Aliases, anchors and merge keys are read as kubectl reads them, and their cost is bounded by
// the input's size: a resource whose aliases expand it as far as yaml.v3 and kubectl refuse to
// decode is not walked (an Expansion problem); an image reached through several aliases is one
// field; an image whose anchor is also used where no image belongs is not returned (a Shared
// problem), since pinning it would change that value too.
//
// It works on the parsed YAML tree (go.yaml.in/yaml/v3 nodes, as kyaml exposes them) so that the
// fields it returns can be rewritten in place, keeping comments, key order and quoting. It knows
// nothing of KRM functions or registries: a second front end (an admission webhook) can reuse it.
package walker

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// Kind says how a field holds its reference, and so how it is pinned.
type Kind int

const (
	// Reference: Node is a string scalar holding the whole reference; pinning appends "@digest".
	Reference Kind = iota
	// KustomizeImage: Node is an entry of a Kustomization's images: list; pinning sets its
	// digest: key, so that kustomize build emits name:tag@digest.
	KustomizeImage
	// KptFunction: Node is the image scalar of a function in a Kptfile's pipeline. Image is its
	// full name (a name without "/" gets the kpt image prefix), with the tag that its line comment
	// holds when the value is repo@digest; pinning writes repo@digest, which every kpt accepts,
	// and keeps the tag in the line comment ("# v0.2.0").
	KptFunction
	// HelmImage: Node is a mapping of Helm values that splits an image into registry,
	// repository, tag and digest; Image is [registry/]repository:tag, with @digest when the
	// digest key holds one. Pinning sets the digest key, which the mapping has.
	HelmImage
	// OCIRepositoryRef: Node is the spec.ref of a Flux OCIRepository; Image is spec.url without
	// oci:// and the ref's tag, with @digest when the ref has one. Pinning sets the ref's digest
	// key, after tag.
	OCIRepositoryRef
	// RelatedImage: Node is the value of a container's RELATED_IMAGE_* environment variable,
	// written as a Reference; pinning appends "@digest".
	RelatedImage
)

// Verbatim reports whether a field of kind k is a string scalar holding its Image as written,
// which pinning replaces with the pinned reference: a front end that edits text can replace the
// value's bytes. The others change what Set says (a key, a line comment): compare the node.
func (k Kind) Verbatim() bool { return k == Reference || k == RelatedImage }

// Lenient reports whether a field of kind k may hold something that is no image reference (an
// environment variable, a chart's values): a caller leaves such a value alone with a warning
// rather than fail on it.
func (k Kind) Lenient() bool { return k == HelmImage || k == RelatedImage }

// Field is one image reference found in an object.
type Field struct {
	// Path is the field's path from the object root, e.g. "spec.template.spec.containers[0].image".
	Path string
	// Image is the reference the field stands for. For a Reference it is the node's value; for a
	// KustomizeImage it is built from the entry (newName or name, newTag, digest).
	Image string
	// Node is the node that holds the value: the string scalar of a Reference, the entry mapping
	// of a KustomizeImage. Use Set to pin it. No two fields Walk returns share a Node: a value
	// reached more than once (through an alias or a merge key) is one field, with the path at
	// which the walk first met it, and it is pinned once, where it is written (at its anchor).
	Node *yaml.Node
	// Kind says what Node is.
	Kind Kind
	// Item is the resource inside a List that holds the field; nil for a resource of its own.
	Item *Item
	// Comment is, for a KptFunction, the node whose line comment holds the function's tag: Node
	// itself, or the one-line flow mapping around it. Nil for the other kinds.
	Comment *yaml.Node
}

// Set writes to, the reference the field now stands for (Image with "@digest"), into the field
// in place, keeping comments and quoting, in the syntax of its kind: a Reference's value becomes
// to; a KustomizeImage entry gets to's digest as its digest: key, after newTag; a HelmImage its
// digest key; an OCIRepositoryRef its digest key, after tag; a KptFunction is written as
// repo@digest with the tag in its line comment.
func (f Field) Set(to string) {
	_, digest, _ := strings.Cut(to, "@")
	switch f.Kind {
	case KustomizeImage:
		setKey(f.Node, "digest", digest, "newTag")
	case HelmImage:
		setHelmImage(f.Node, digest)
	case OCIRepositoryRef:
		setKey(f.Node, "digest", digest, "tag")
	case KptFunction:
		setKptFunction(f, to)
	default:
		f.Node.Value = to
	}
}

// Item names a resource held in the items of a List.
type Item struct {
	// Index is the resource's place in the List's items.
	Index                             int
	APIVersion, Kind, Name, Namespace string
}

// ProblemKind classifies a Problem.
type ProblemKind int

const (
	// Unreadable: a field where an image belongs cannot be read as one (a warning: nothing to pin).
	Unreadable ProblemKind = iota
	// Ambiguous: a duplicate key decides an image and its values disagree; the fields under it are
	// not returned (an error: kubectl keeps the last value, digester will not guess).
	Ambiguous
	// Duplicate: a key appears twice in one mapping without deciding an image (a warning; the
	// last value counts, as with kubectl).
	Duplicate
	// Unlisted: an image key holds a string at a place digester does not pin; Image holds it.
	// Its Message says how to declare the place, and is the same for every resource of the kind.
	Unlisted
	// Tagged: an image field's value carries an explicit YAML tag other than !!str (!!binary,
	// !custom); the field is not returned (an error: kubectl runs what the tag decodes to, which
	// the text need not show, and digester pins only plain or quoted strings).
	Tagged
	// Shared: an image value's anchor is also used at a place that is no image field (a label, an
	// env value); the field is not returned (an error: pinning it would change that value too).
	Shared
	// Expansion: the resource's aliases expand it past what yaml.v3 and kubectl decode, or an
	// anchor contains an alias of itself; nothing in it is returned (an error).
	Expansion
	// NoDigestKey: a Helm values mapping splits an image (Image) into repository and tag but has
	// no digest key to pin it in (a warning: the chart decides whether it reads one).
	NoDigestKey
	// Floating: a reference follows a range of tags (a Flux OCIRepository's semver) and so has
	// no one tag to pin (an info).
	Floating
)

// Problem is something in an object the caller should tell the user about.
type Problem struct {
	// Path is the field's path from the object root.
	Path string
	// Message says what is wrong, in plain words.
	Message string
	// Kind classifies the problem.
	Kind ProblemKind
	// Image is the value found, for Unlisted problems.
	Image string
	// Item is the resource inside a List the problem is in; nil for a resource of its own.
	Item *Item
	// Node is where the problem is written, for its line and column, when one node says it: the
	// later key of a duplicate, a tagged value, a shared image value, the alias that expands
	// furthest, the split image without a digest key, the Kptfile function or variable that
	// cannot be pinned. Nil for the other problems.
	Node *yaml.Node
}

func (p Problem) String() string { return p.Path + ": " + p.Message }

// DefaultPodSpecPaths are the places a pod spec sits in the built-in workload kinds and in custom
// kinds shaped like them: Pod; Deployment, StatefulSet, DaemonSet, ReplicaSet, Job and most CRDs;
// CronJob; PodTemplate.
var DefaultPodSpecPaths = [][]string{
	{"spec"},
	{"spec", "template", "spec"},
	{"spec", "jobTemplate", "spec", "template", "spec"},
	{"template", "spec"},
}

// DefaultContainerLists are the container lists of a pod spec.
var DefaultContainerLists = []string{"containers", "initContainers", "ephemeralContainers"}

// Walker finds image fields. The zero value is not useful: use New.
type Walker struct {
	podSpecPaths   [][]string
	containerLists []string
	presets        bool
	fields         []ImageField
	kptPrefix      string

	// rules are the places to look, by kind ("" for fields declared for any kind).
	rules map[string][]rule
}

// presetRules are the rules of Presets by kind, compiled once: a Walker is made for every run (for
// every admission, in the webhook), and Presets do not change.
var presetRules = sync.OnceValue(func() map[string][]rule {
	m := map[string][]rule{}
	for _, p := range Presets {
		for _, k := range p.Kinds {
			m[k] = append(m[k], p.rules()...)
		}
	}
	return m
})

// Option configures a Walker.
type Option func(*Walker)

// WithoutPresets turns the built-in Presets off.
func WithoutPresets() Option { return func(w *Walker) { w.presets = false } }

// WithImageFields adds declared image fields, looked at in addition to everything else.
func WithImageFields(fields ...ImageField) Option {
	return func(w *Walker) { w.fields = append(w.fields, fields...) }
}

// WithKptImagePrefix sets the prefix that kpt puts in front of a function image named without
// "/" (default DefaultKptImagePrefix); a trailing "/" is optional.
func WithKptImagePrefix(prefix string) Option {
	return func(w *Walker) {
		if prefix != "" {
			w.kptPrefix = strings.TrimRight(prefix, "/")
		}
	}
}

// New returns a Walker that looks in DefaultPodSpecPaths, DefaultContainerLists, the image
// volumes of those pod specs, the Presets and kustomize images: entries, unless told otherwise.
func New(opts ...Option) *Walker {
	w := &Walker{podSpecPaths: DefaultPodSpecPaths, containerLists: DefaultContainerLists, presets: true, kptPrefix: DefaultKptImagePrefix}
	for _, o := range opts {
		o(w)
	}
	switch {
	case w.presets && len(w.fields) == 0:
		w.rules = presetRules() // shared: a Walker only reads its rules
	case w.presets:
		w.rules = map[string][]rule{}
		for k, rs := range presetRules() {
			w.rules[k] = rs[:len(rs):len(rs)] // appended to below: copied, not shared
		}
	default:
		w.rules = map[string][]rule{}
	}
	for _, f := range w.fields {
		w.rules[f.Kind] = append(w.rules[f.Kind], rule{group: f.Group, version: f.Version, path: splitPath(f.Path), user: true})
	}
	return w
}

// Walk returns the image fields of obj, a mapping node, and the problems met on the way. A List
// (kind List or *List, with items) is walked item by item, each as a resource of its own. Walk
// never modifies obj.
func (w *Walker) Walk(obj *yaml.Node) ([]Field, []Problem) {
	obj = deref(obj)
	if obj == nil || obj.Kind != yaml.MappingNode {
		return nil, nil
	}
	x := expand(obj)
	if !x.ok() {
		return nil, []Problem{x.problem(obj)}
	}
	fields, problems := w.walkList(obj)
	return x.finish(obj, fields, problems)
}

// walkList walks a List item by item, anything else as one resource.
func (w *Walker) walkList(obj *yaml.Node) ([]Field, []Problem) {
	if kind := scalar(lookup(obj, "kind")); strings.HasSuffix(kind, "List") {
		if items := lookup(obj, "items"); items != nil && items.Kind == yaml.SequenceNode {
			var fields []Field
			var problems []Problem
			for i, it := range items.Content {
				it = deref(it)
				if it == nil || it.Kind != yaml.MappingNode {
					continue
				}
				item := &Item{Index: i, APIVersion: scalar(lookup(it, "apiVersion")), Kind: scalar(lookup(it, "kind"))}
				if md := lookup(it, "metadata"); md != nil {
					item.Name, item.Namespace = scalar(lookup(md, "name")), scalar(lookup(md, "namespace"))
					if item.Name == "" {
						item.Name = scalar(lookup(md, "generateName"))
					}
				}
				f, p := w.walkObject(it)
				prefix := "items[" + strconv.Itoa(i) + "]."
				for j := range f {
					f[j].Path, f[j].Item = prefix+f[j].Path, item
				}
				for j := range p {
					p[j].Path, p[j].Item = prefix+p[j].Path, item
				}
				fields = append(fields, f...)
				problems = append(problems, p...)
			}
			return fields, problems
		}
	}
	return w.walkObject(obj)
}

// walkObject walks one resource.
func (w *Walker) walkObject(obj *yaml.Node) ([]Field, []Problem) {
	var r results
	apiVersion, kind := scalar(lookup(obj, "apiVersion")), scalar(lookup(obj, "kind"))
	grp, version := group(apiVersion)
	rules, preset := w.match(grp, version, kind)
	if !preset {
		for _, p := range w.podSpecPaths {
			spec := lookupPath(obj, p)
			if spec == nil || spec.Kind != yaml.MappingNode {
				continue
			}
			w.podSpec(&r, spec, strings.Join(p, "."))
		}
	}
	var data []string
	for _, rl := range rules {
		if rl.data != nil {
			data = rl.data // a preset's; declared fields add none
		}
		// A declared field that a default place already found is returned once: see finish.
		follow(obj, rl.path, "", func(n *yaml.Node, path string) {
			switch {
			case rl.read != nil:
				// Through a copy: r handed to a function value would go to the heap for every object.
				sub := results{fields: r.fields, problems: r.problems}
				rl.read(w, &sub, n, path)
				r.fields, r.problems = sub.fields, sub.problems
			case !rl.podSpec:
				leaf(&r, n, path)
			case n.Kind == yaml.MappingNode:
				w.podSpec(&r, n, path)
			}
		})
	}
	if grp == "kustomize.config.k8s.io" && (kind == "Kustomization" || kind == "Component") {
		kustomizeImages(&r, obj)
		w.helmCharts(&r, obj)
	}
	return w.check(obj, grp, kind, data, r.fields, r.problems)
}

// match returns the rules for a resource of group, version and kind, and whether a preset is
// among them. It costs one map look-up: kinds are matched before anything else is read.
func (w *Walker) match(grp, version, kind string) ([]rule, bool) {
	var out []rule
	preset := false
	for _, k := range [2]string{kind, ""} {
		for _, r := range w.rules[k] {
			switch {
			case r.preset && r.group != grp:
			case r.user && (r.group != "" && r.group != grp || r.version != "" && r.version != version):
			default:
				out = append(out, r)
				preset = preset || r.preset
			}
		}
		if kind == "" {
			break
		}
	}
	return out, preset
}

// podSpec reads the images of a pod spec's containers and image volumes.
func (w *Walker) podSpec(r *results, spec *yaml.Node, base string) {
	for _, list := range w.containerLists {
		containers(r, spec, base+"."+list, list, w.presets)
	}
	vols := lookup(spec, "volumes")
	if vols == nil || vols.Kind != yaml.SequenceNode {
		return
	}
	for i, v := range vols.Content {
		img := lookup(v, "image")
		if img == nil || img.Kind != yaml.MappingNode {
			continue
		}
		path := base + ".volumes[" + strconv.Itoa(i) + "].image.reference"
		ref := lookup(img, "reference")
		if ref == nil || isNull(ref) {
			r.problem(path, fmt.Sprintf("image volume %s has no reference", containerName(deref(v))))
			continue
		}
		leaf(r, ref, path)
	}
}

// leaf reads a field that holds one reference; a missing or null field is nothing to pin.
func leaf(r *results, n *yaml.Node, path string) {
	switch {
	case n == nil || isNull(n):
	case tagged(n):
		r.tagged(path, n)
	case n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str":
		r.problem(path, fmt.Sprintf("is %s, want a string", describe(n)))
	case strings.TrimSpace(n.Value) == "":
		r.problem(path, "is empty")
	default:
		r.fields = append(r.fields, Field{Path: path, Image: n.Value, Node: n})
	}
}

// results collects what a walk finds.
type results struct {
	fields   []Field
	problems []Problem
}

func (r *results) problem(path, msg string) {
	r.problems = append(r.problems, Problem{Path: path, Message: msg})
}

// problemAt is problem, written at n.
func (r *results) problemAt(n *yaml.Node, path, msg string) {
	r.problems = append(r.problems, Problem{Path: path, Message: msg, Node: n})
}

// tagged reports an image value written with an explicit YAML tag other than !!str.
func (r *results) tagged(path string, n *yaml.Node) {
	why := "kubectl ignores a tag it does not know and runs the text, but other YAML readers may decode it otherwise"
	switch n.ShortTag() {
	case "!!binary":
		why = "kubectl runs the base64-decoded value, not the text a reviewer reads"
	case "!!int", "!!float", "!!bool", "!!null", "!!timestamp":
		why = "it does not decode to the string written"
	}
	r.problems = append(r.problems, Problem{Kind: Tagged, Path: path, Node: n, Message: fmt.Sprintf(
		"the image is written with the YAML tag %s: %s; digester pins only plain or quoted strings, so it is not pinned; remove the tag",
		n.Tag, why)})
}

// tagged reports whether n is a scalar written with an explicit tag other than !!str: !!binary
// (base64), a custom tag (!custom nginx), !!int. kubectl (sigs.k8s.io/yaml) does not refuse
// such an image: it decodes image: !custom nginx:1.27 to the string "nginx:1.27", and
// image: !!binary bmdpbng6MS4yNw== to "nginx:1.27" too, so the cluster runs an image the text
// does not show. Untagged numbers, booleans and null keep their warnings (leaf, containers):
// kubectl refuses those itself. An explicit !!str is a string like any other.
func tagged(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Style&yaml.TaggedStyle != 0 && n.ShortTag() != "!!str"
}

// follow calls emit with every node at path under n, with its dotted path from the object root;
// lists met on the way are traversed, as kustomize traverses them.
func follow(n *yaml.Node, path []string, at string, emit func(*yaml.Node, string)) {
	n = deref(n)
	switch {
	case n == nil:
	case n.Kind == yaml.SequenceNode && len(path) > 0:
		for i, c := range n.Content {
			follow(c, path, at+"["+strconv.Itoa(i)+"]", emit)
		}
	case len(path) == 0:
		emit(n, at)
	case n.Kind == yaml.MappingNode:
		if v := lookup(n, path[0]); v != nil {
			if at != "" {
				at += "."
			}
			follow(v, path[1:], at+path[0], emit)
		}
	}
}

// scalar returns the value of a scalar node, "" for null or anything else.
func scalar(n *yaml.Node) string {
	if n != nil && n.Kind == yaml.ScalarNode && !isNull(n) {
		return n.Value
	}
	return ""
}

// containers reads the image of every container in spec[list].
// With related, the values of their RELATED_IMAGE_* variables are fields too.
func containers(r *results, spec *yaml.Node, path, list string, related bool) {
	seq := lookup(spec, list)
	if seq == nil || isNull(seq) {
		return
	}
	if seq.Kind != yaml.SequenceNode {
		r.problem(path, fmt.Sprintf("is %s, want a list of containers", describe(seq)))
		return
	}
	for i, c := range seq.Content {
		cpath := path + "[" + strconv.Itoa(i) + "]"
		c = deref(c)
		if c.Kind != yaml.MappingNode {
			r.problem(cpath, fmt.Sprintf("is %s, want a container object", describe(c)))
			continue
		}
		img := lookup(c, "image")
		ipath := cpath + ".image"
		switch {
		case img != nil && tagged(img):
			r.tagged(ipath, img)
		case img == nil || isNull(img):
			r.problem(ipath, fmt.Sprintf("container %s has no image", containerName(c)))
		case img.Kind != yaml.ScalarNode || img.ShortTag() != "!!str":
			r.problem(ipath, fmt.Sprintf("is %s, want a string", describe(img)))
		case strings.TrimSpace(img.Value) == "":
			r.problem(ipath, fmt.Sprintf("container %s has an empty image", containerName(c)))
		default:
			r.fields = append(r.fields, Field{Path: ipath, Image: img.Value, Node: img})
		}
		if related {
			if env := lookup(c, "env"); env != nil {
				containerEnv(r, env, path, "", i)
			}
		}
	}
}

func containerName(c *yaml.Node) string {
	if n := lookup(c, "name"); n != nil && n.Kind == yaml.ScalarNode && n.Value != "" {
		return strconv.Quote(n.Value)
	}
	return "without a name"
}

// lookupPath follows keys from a mapping node; nil if any step is missing or not a mapping.
func lookupPath(n *yaml.Node, keys []string) *yaml.Node {
	for _, k := range keys {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		n = lookup(n, k)
	}
	return n
}

// lookup returns the value of key in mapping m, following aliases and merge keys ("<<").
// The last occurrence of a duplicated key wins, as in most YAML decoders.
func lookup(m *yaml.Node, key string) *yaml.Node {
	return lookupOnce(m, key, nil)
}

// lookupOnce is lookup visiting each mapping at most once: merge keys can name a mapping that
// merges itself (endless recursion) or name one mapping many times over, level after level
// (exponential time from a few lines of YAML).
func lookupOnce(m *yaml.Node, key string, seen map[*yaml.Node]bool) *yaml.Node {
	m = deref(m)
	if m == nil || m.Kind != yaml.MappingNode || seen[m] {
		return nil
	}
	var results *yaml.Node
	var merges []*yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i]
		switch {
		case k.Value == key && k.Kind == yaml.ScalarNode:
			results = m.Content[i+1]
		case k.Kind == yaml.ScalarNode && k.Value == "<<" && k.Tag == "!!merge":
			merges = append(merges, deref(m.Content[i+1]))
		}
	}
	if results != nil || len(merges) == 0 {
		return deref(results)
	}
	if seen == nil { // merge keys are rare: allocate only when one is met
		seen = map[*yaml.Node]bool{}
	}
	seen[m] = true
	for _, mg := range merges {
		targets := []*yaml.Node{mg}
		if mg != nil && mg.Kind == yaml.SequenceNode {
			targets = mg.Content
		}
		for _, t := range targets {
			if v := lookupOnce(t, key, seen); v != nil {
				return v
			}
		}
	}
	return nil
}

// deref follows alias nodes to the node they name (bounded, in case of a malformed cycle).
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 64; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		return deref(n.Content[0])
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!int", "!!float":
			return "a number (" + n.Value + ")"
		case "!!bool":
			return "a boolean (" + n.Value + ")"
		case "!!null":
			return "null"
		case "!!str":
			return "a string"
		}
		return "a scalar tagged " + n.ShortTag()
	}
	return "an unexpected node"
}
