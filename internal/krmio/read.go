package krmio

import (
	"bytes"

	"github.com/kptdev/krm-functions-sdk/go/fn"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// Read reads a ResourceList. In the block style kpt and kustomize write, it finds the items in
// the text without parsing them (see Item.Parse) and leaves the rest (apiVersion, kind,
// functionConfig, results) to the SDK; any other list it reads whole with the SDK. Its errors are
// the SDK's.
func Read(in []byte) (*List, error) {
	items, rest, ok := split(in)
	switch {
	case !ok, len(bytes.TrimSpace(rest)) == 0: // the SDK reads blank input as a ResourceList
		return readWhole(in)
	case !bytes.HasSuffix(in, []byte("\n")):
		return readWhole(in) // the line break the last item would need could change its last value (|+)
	}
	rl, err := fn.ParseResourceList(rest)
	if err != nil || len(rl.Items) > 0 {
		return readWhole(in) // let the SDK say what is wrong with the whole
	}
	if !comments(items.key) { // its comment, a character the parser refuses
		return readWhole(in)
	}
	l := &List{FunctionConfig: rl.FunctionConfig, Results: rl.Results}
	lead := items.prelude
	for i, start := range items.starts {
		end := items.end
		if i+1 < len(items.starts) {
			end = items.starts[i+1]
		}
		text, gap := cutGap(in[start:end], items.indent)
		if !comments(lead) {
			return readWhole(in)
		}
		l.Items = append(l.Items, &Item{lead: lead, text: text, indent: items.indent})
		lead = gap
	}
	if !comments(lead) {
		return readWhole(in)
	}
	l.trailer = lead
	return l, nil
}

// comments reports whether b, comment and blank lines that no item's parse reads (or the items:
// line, whose comment none reads), is what the parser reads as such: no character it refuses.
func comments(b []byte) bool {
	var n yaml.Node
	return len(b) == 0 || yaml.Unmarshal(b, &n) == nil
}

// readWhole reads a ResourceList with the SDK, as fn.Run does.
func readWhole(in []byte) (*List, error) {
	rl, err := fn.ParseResourceList(in)
	if err != nil {
		return nil, err
	}
	l := &List{FunctionConfig: rl.FunctionConfig, Results: rl.Results, whole: true}
	for i, o := range rl.Items {
		rn := o.MoveToResourceNode()
		l.Items = append(l.Items, &Item{tree: rn.YNode(), key: sortKey(rn.YNode())})
		rl.Items[i] = fn.MoveToKubeObject(rn)
	}
	return l, nil
}

// itemsText is where the items of a ResourceList are in its text.
type itemsText struct {
	key     []byte // the "items:" line, which neither an item nor the rest holds
	prelude []byte // comment and blank lines before the first item
	starts  []int  // where each item's "- " line starts
	end     int    // where the items end
	indent  int    // the column of the items' "-"
}

// split finds the items of a ResourceList written in block style: an "items:" key at the start
// of a line with nothing after it but a comment, then a block sequence whose entries ("- ") start
// lines at one indentation, up to the next line that starts with a key. It returns them and the
// list without them, or false for a list written any other way. It does not check that each
// item's text parses on its own (Item.Parse does): the lines it splits at are entries of the
// sequence whenever every item does.
func split(in []byte) (items itemsText, rest []byte, ok bool) {
	keyStart, regionStart := -1, -1
	items.indent, items.end = -1, -1
	for off, first := 0, true; off < len(in); {
		end := bytes.IndexByte(in[off:], '\n') + off + 1
		if end == off {
			end = len(in)
		}
		line := bytes.TrimRight(in[off:end], "\r\n")
		trimmed := bytes.TrimLeft(line, " ")
		indent := len(line) - len(trimmed)
		switch {
		case len(bytes.TrimLeft(trimmed, "\t")) == 0 || trimmed[0] == '#':
			// blank or a comment: part of whatever it is in
		case indent == 0 && (bytes.HasPrefix(line, []byte("---")) || bytes.HasPrefix(line, []byte("..."))):
			if !first || !bytes.Equal(bytes.TrimRight(line, " \t"), []byte("---")) {
				return items, nil, false // several documents, or a document marker within the one
			}
		case indent == 0 && !entry(trimmed): // a key of the ResourceList
			if regionStart >= 0 && items.end < 0 {
				items.end = off
			}
			if key, value := topKey(line); key == "items" {
				if keyStart >= 0 || len(bytes.TrimLeft(value, " \t")) > 0 && bytes.TrimLeft(value, " \t")[0] != '#' {
					return items, nil, false // two items: keys, or items written on the key's line
				}
				keyStart, regionStart, items.end = off, end, -1
			} else if key == "" {
				return items, nil, false
			}
		case regionStart < 0 || items.end >= 0:
			// the value of another key
		case entry(trimmed) && (items.indent < 0 || indent == items.indent):
			items.indent = indent
			items.starts = append(items.starts, off)
		case items.indent < 0 || indent <= items.indent:
			return items, nil, false // not a block sequence of entries at one indentation
		}
		first = false
		off = end
	}
	if regionStart < 0 {
		return items, nil, false // no items: nothing to gain
	}
	if items.end < 0 {
		items.end = len(in)
	}
	if len(items.starts) == 0 {
		return items, nil, false // items: with no value
	}
	items.key, items.prelude = in[keyStart:regionStart], in[regionStart:items.starts[0]]
	items.indent = max(items.indent, 0)
	rest = append(append([]byte{}, in[:keyStart]...), in[items.end:]...)
	return items, rest, true
}

// entry reports whether a line, its indentation removed, starts an entry of a block sequence.
func entry(trimmed []byte) bool {
	return len(trimmed) > 0 && trimmed[0] == '-' && (len(trimmed) == 1 || trimmed[1] == ' ' || trimmed[1] == '\t')
}

// topKey returns the key a line at the start of the ResourceList's mapping starts, and what
// follows its colon; "" if the line is not a plain key of letters and digits and a colon.
func topKey(line []byte) (key string, value []byte) {
	i := 0
	for i < len(line) && ('a' <= line[i] && line[i] <= 'z' || 'A' <= line[i] && line[i] <= 'Z' || i > 0 && '0' <= line[i] && line[i] <= '9') {
		i++
	}
	if i == 0 || i == len(line) || line[i] != ':' || i+1 < len(line) && line[i+1] != ' ' && line[i+1] != '\t' {
		return "", nil
	}
	return string(line[:i]), line[i+1:]
}

// cutGap splits an item's text from the comment lines at its end that are not indented past the
// items' "-" (the parser gives them to the next item, or to none), with the blank lines among and
// after them. Blank lines right after the item stay with it: they may be part of a block scalar.
func cutGap(text []byte, indent int) (item, gap []byte) {
	cut := len(text)
	for end := len(text); end > 0; {
		start := bytes.LastIndexByte(text[:end-1], '\n') + 1
		if start == 0 {
			break
		}
		line := bytes.TrimRight(text[start:end], "\r\n")
		trimmed := bytes.TrimLeft(line, " \t")
		switch {
		case len(trimmed) == 0:
		case trimmed[0] == '#' && len(line)-len(trimmed) <= indent:
			cut = start
		default:
			return text[:cut], text[cut:]
		}
		end = start
	}
	return text[:cut], text[cut:]
}
