package resolver_test

import (
	"fmt"
	"strings"
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

// TestParseDockerHubSpellings: every spelling of Docker Hub's host is Docker Hub, with its
// library/ namespace for official images, so that all share one lookup, one lock entry and the
// mirrors of docker.io; other hosts keep their name.
func TestParseDockerHubSpellings(t *testing.T) {
	got := map[string]string{}
	want := map[string]string{}
	for _, ref := range []string{
		"nginx:1.27", "docker.io/nginx:1.27", "docker.io/library/nginx:1.27", "index.docker.io/nginx:1.27",
		"registry-1.docker.io/nginx:1.27", "registry-1.docker.io/library/nginx:1.27", "Docker.io/nginx:1.27",
		"DOCKER.IO./library/nginx:1.27", "docker.io./nginx:1.27", "Registry-1.Docker.IO/nginx:1.27",
	} {
		want[ref] = "index.docker.io/library/nginx:1.27"
		r, err := resolver.Parse(ref)
		got[ref] = fmt.Sprint(err)
		if err == nil {
			got[ref] = r.Name()
		}
	}
	for ref, name := range map[string]string{
		"docker.io:443/nginx:1.27":    "docker.io:443/nginx:1.27", // another address, as go-containerregistry and docker read it
		"hub.docker.io/nginx:1.27":    "hub.docker.io/nginx:1.27",
		"Quay.IO/team/app:1":          "Quay.IO/team/app:1",
		"docker.io/team/app@" + zeros: "index.docker.io/team/app@" + zeros,
	} {
		want[ref] = name
		r, err := resolver.Parse(ref)
		got[ref] = fmt.Sprint(err)
		if err == nil {
			got[ref] = r.Name()
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("normalised names (-want +got):\n%s", diff)
	}
}

var zeros = "sha256:" + strings.Repeat("0", 64)
