package resolver_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/digester/digester/resolver"
)

// TestParseMessages: what is wrong with a reference, in plain words.
func TestParseMessages(t *testing.T) {
	tests := map[string]string{
		"${IMAGE}":                    `"${IMAGE}" is not a valid image reference: it holds an unexpanded template variable, ${IMAGE}`,
		"$IMAGE":                      `"$IMAGE" is not a valid image reference: it holds an unexpanded template variable, $IMAGE`,
		"golang:$(params.version)":    `"golang:$(params.version)" is not a valid image reference: it holds an unexpanded template variable, $(params.version)`,
		"{{inputs.parameters.image}}": `"{{inputs.parameters.image}}" is not a valid image reference: it holds an unexpanded template variable, {{inputs.parameters.image}}`,
		"Nginx:1.27":                  `"Nginx:1.27" is not a valid image reference: repository names must be lowercase`,
		"nginx:":                      `"nginx:" is not a valid image reference: the tag after ':' is empty`,
		"":                            `"" is not a valid image reference: it is empty`,
		"nginx:1.27":                  "",
		"localhost:5000/a/b:1":        "",
	}
	got := map[string]string{}
	for ref := range tests {
		got[ref] = ""
		if _, err := resolver.Parse(ref); err != nil {
			got[ref] = err.Error()
		}
		if resolver.Template(ref) != "" && tests[ref] == "" {
			t.Errorf("Template(%q) = %q, want none", ref, resolver.Template(ref))
		}
	}
	if diff := cmp.Diff(tests, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
