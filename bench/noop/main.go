// Command noop is the floor the benchmarks measure digester against: a KRM function on the same
// SDK (fn.AsMain) whose processor does nothing, so its cost is reading, parsing, serialising and
// writing the ResourceList and nothing else.
package main

import (
	"os"

	"github.com/kptdev/krm-functions-sdk/go/fn"
)

func main() {
	if err := fn.AsMain(fn.ResourceListProcessorFunc(func(*fn.ResourceList) (bool, error) { return true, nil })); err != nil {
		os.Exit(1)
	}
}
