package walker

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/digester/digester/imageref"
)

// DefaultKptImagePrefix is what kpt puts in front of a function image named without "/" (such
// as set-labels:v0.1) since 1.0.0-beta.59, unless KPT_IMAGE_PREFIX or --image-prefix says
// otherwise (1.0.0-beta.66.1 and later); earlier releases put gcr.io/kpt-fn.
const DefaultKptImagePrefix = "ghcr.io/kptdev/krm-functions-catalog"

// tagSyntax is a tag as the OCI distribution spec writes it.
var tagSyntax = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// kptFunctions reads the image of each function in list, a Kptfile's pipeline.mutators or
// pipeline.validators. A function that runs an exec: has no image and is none of digester's.
func kptFunctions(w *Walker, r *results, list *yaml.Node, path string) {
	if list.Kind != yaml.SequenceNode {
		return
	}
	for i, fn := range list.Content {
		fn = deref(fn)
		img := lookup(fn, "image")
		ipath := path + "[" + strconv.Itoa(i) + "].image"
		switch {
		case img == nil || isNull(img):
			continue
		case img.Kind != yaml.ScalarNode || img.ShortTag() != "!!str":
			r.problemAt(img, ipath, fmt.Sprintf("is %s, want a string", describe(img)))
			continue
		case strings.TrimSpace(img.Value) == "":
			r.problemAt(img, ipath, "is empty")
			continue
		}
		holder := commentHolder(list, fn, img)
		image := kptReference(img.Value, comment(holder), w.kptPrefix)
		if holder == nil && !imageref.HasDigest(img.Value) && imageref.HasTag(image) {
			r.problemAt(img, ipath, "is written in a flow list, where digester cannot keep the function's tag in a line comment beside its pin (kpt 1.0.0-beta.56 refuses repo:tag@digest); write the list as a block list, one function a line")
			continue
		}
		r.fields = append(r.fields, Field{Path: ipath, Image: image, Node: img, Kind: KptFunction, Comment: holder})
	}
}

// commentHolder returns the node whose line comment is the one on img's line, as the YAML
// parser attaches it: img itself in a block mapping, the function's mapping when it is written
// in flow style on one line; nil when the function is in a flow list, whose comment no function
// owns.
func commentHolder(list, fn, img *yaml.Node) *yaml.Node {
	switch {
	case list.Style&yaml.FlowStyle != 0:
		return nil
	case fn.Style&yaml.FlowStyle == 0:
		return img
	case oneLine(fn, img.Line, 0):
		return fn
	}
	return nil
}

// oneLine reports whether n and everything in it is on line.
func oneLine(n *yaml.Node, line, depth int) bool {
	if n.Line != line || depth > maxDepth {
		return false
	}
	for _, c := range n.Content {
		if !oneLine(c, line, depth+1) {
			return false
		}
	}
	return true
}

func comment(n *yaml.Node) string {
	if n == nil {
		return ""
	}
	return n.LineComment
}

// kptReference is the reference a Kptfile function's image value stands for: with prefix in
// front of a name without "/", as kpt resolves it, and, when the value is repo@digest, the
// tag its line comment starts with.
func kptReference(value, lineComment, prefix string) string {
	ref := value
	if !strings.Contains(ref, "/") {
		ref = prefix + "/" + ref
	}
	name, tag, digest := imageref.Split(ref)
	if c := commentTag(lineComment); digest != "" && tag == "" && c != "" {
		ref = name + ":" + c + "@" + digest
	}
	return ref
}

// commentTag returns the first word of a line comment ("# v0.2.0" or "# v0.2.0 reviewed"), if
// it can be a tag.
func commentTag(c string) string {
	words := strings.Fields(strings.TrimPrefix(strings.TrimSpace(c), "#"))
	if len(words) == 0 || !tagSyntax.MatchString(words[0]) {
		return ""
	}
	return words[0]
}

// setKptFunction writes to (name:tag@digest) as kpt reads it: repo@digest, the tag first in the
// line comment. A value written as repo:tag@digest, which kpt accepts since 1.0.0-beta.59,
// stays in that form.
func setKptFunction(f Field, to string) {
	if imageref.HasDigest(f.Node.Value) && imageref.HasTag(f.Node.Value) {
		f.Node.Value = to
		return
	}
	repo, tag, digest := imageref.Split(to)
	f.Node.Value = repo + "@" + digest
	if tag == "" || f.Comment == nil || commentTag(f.Comment.LineComment) == tag {
		return
	}
	rest := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(f.Comment.LineComment), "#"))
	f.Comment.LineComment = strings.TrimSpace("# " + tag + " " + rest)
}
