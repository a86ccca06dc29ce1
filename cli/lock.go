package cli

import (
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/digester/digester/pin"
	"github.com/digester/digester/splice"
)

// lockEdit returns the edit that writes a changed DigestLock's images: over the old one in the
// file's text (or after its last key, if it had none), so that no other byte of the file changes:
// not the lock's other keys and comments, not the other documents of a file it shares.
func (f *file) lockEdit(o *pin.Object) (splice.Edit, error) {
	m := o.Node
	if m.Kind == yaml.DocumentNode && len(m.Content) == 1 {
		m = m.Content[0]
	}
	if m.Kind != yaml.MappingNode || m.Style&yaml.FlowStyle != 0 || len(m.Content) < 4 {
		return splice.Edit{}, f.lockError(m, "is written in flow style ({...})")
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "images" {
			return splice.SetValue(m, "images", m.Content[i+1]), nil
		}
	}
	return splice.Edit{}, f.lockError(m, "has no images:")
}

// lockError says why the DigestLock m cannot get its new images: in the file's text.
func (f *file) lockError(m *yaml.Node, why string) error {
	if m.Kind == yaml.DocumentNode && len(m.Content) == 1 {
		m = m.Content[0]
	}
	return &fileError{f.name, fmt.Sprintf("the DigestLock at line %d %s, so digester cannot update its images: in place; write it in block style, or delete it and run pin --lock update to write a new one", m.Line, why)}
}

// checkLocks parses the new bytes of a file with a changed lock and checks that they hold what the
// run's nodes hold: each document as pinned, each changed lock with its new images. (Comments
// are not compared: the parser may attach a comment next to the new images: to another node.) A lock edit that did not do exactly
// that is a bug, and fails the run rather than write a broken file.
func checkLocks(fl *input) error {
	after := &file{name: fl.name, data: fl.pinned}
	err := after.parse()
	if err == nil && len(after.objs) != len(fl.objs) {
		err = fmt.Errorf("%d resources, not %d", len(after.objs), len(fl.objs))
	}
	for i := 0; err == nil && i < len(fl.objs); i++ {
		if !sameNodes(after.objs[i].Node, fl.objs[i].Node) {
			err = fmt.Errorf("resource %d differs", i+1)
		}
	}
	if err != nil {
		return &fileError{fl.name, fmt.Sprintf("updating the DigestLock in place would not give the lock the run made (%v); this is a bug in digester, please report it", err)}
	}
	return nil
}

// sameNodes reports whether two YAML trees hold the same values, written alike (style, tags,
// anchors), whatever node their comments are attached to. An alias is compared by its name; an
// empty collection is alike in any style (a new one, written "[]", reads back in flow style).
func sameNodes(a, b *yaml.Node) bool {
	as, bs := a.Style, b.Style
	if len(a.Content) == 0 && (a.Kind == yaml.SequenceNode || a.Kind == yaml.MappingNode) {
		as, bs = as&^yaml.FlowStyle, bs&^yaml.FlowStyle
	}
	if a.Kind != b.Kind || as != bs || a.ShortTag() != b.ShortTag() || a.Value != b.Value ||
		a.Anchor != b.Anchor || len(a.Content) != len(b.Content) {
		return false
	}
	if a.Kind == yaml.AliasNode {
		return true
	}
	for i := range a.Content {
		if !sameNodes(a.Content[i], b.Content[i]) {
			return false
		}
	}
	return true
}
