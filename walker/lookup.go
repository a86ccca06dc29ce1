package walker

import "sigs.k8s.io/kustomize/kyaml/yaml"

// Lookup returns the value of key in mapping m as kubectl reads it: the last of a key written
// twice, through aliases and merge keys ("<<"); nil if m is no mapping or has no such key. It is
// the one way the front ends and the core read a mapping, so that all of them agree with the walker.
func Lookup(m *yaml.Node, key string) *yaml.Node { return lookup(m, key) }

// Scalar returns the value of a scalar node, "" for null, nil or anything else.
func Scalar(n *yaml.Node) string { return scalar(n) }
