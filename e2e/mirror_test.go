package e2e_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/digester/digester/e2e/realregistry"
)

// TestPullThroughCache pins a package whose images name an upstream registry through a real
// pull-through cache in front of it: docker-registry in proxy mode (`proxy: remoteurl:`), both on
// loopback with TLS, the upstream anonymous as a public registry is, the cache requiring
// credentials. digester may reach both (its docker config and CA bundle cover both), so the access
// logs show what it chose to ask: one manifest request per distinct reference at the cache, none
// at the upstream.
func TestPullThroughCache(t *testing.T) {
	up := startRegistry(t, realregistry.Anonymous(), realregistry.AccessLog())
	cache := startRegistry(t, realregistry.Proxy(up), realregistry.AccessLog())

	mediaTypes := map[string]types.MediaType{
		"team/app:1":   types.OCIManifestSchema1,
		"team/multi:1": types.OCIImageIndex,
		"team/lib:2":   types.DockerManifestSchema2,
	}
	digests := map[string]string{}
	for ref, mt := range mediaTypes {
		repo, tag, _ := strings.Cut(ref, ":")
		d, err := up.Push(context.Background(), repo, tag, mt)
		if err != nil {
			t.Fatal(err)
		}
		digests[ref] = d
	}

	// A docker config and a CA bundle that let digester reach either registry.
	dir := t.TempDir()
	auths := map[string]any{}
	var bundle []byte
	for _, r := range []*realregistry.Registry{up, cache} {
		auths[r.Host] = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(r.User + ":" + r.Password))}
		ca, err := os.ReadFile(r.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		bundle = append(bundle, ca...)
	}
	cfg, err := json.Marshal(map[string]any{"auths": auths})
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{"docker/config.json": string(cfg), "ca.pem": string(bundle)})
	e := env{dockerConfig: filepath.Join(dir, "docker"), caFile: filepath.Join(dir, "ca.pem")}

	// app:1 is used twice: still one lookup.
	images := []string{"team/app:1", "team/multi:1", "team/lib:2", "team/app:1"}
	input := func(config string, images []string) []byte {
		in := "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n" +
			"- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: app\n  spec:\n    containers:\n"
		for i, img := range images {
			in += "    - name: c" + string(rune('a'+i)) + "\n      image: " + up.Host + "/" + img + "\n"
		}
		return []byte(in + "functionConfig:\n  apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: digester}\n  data:\n" + config)
	}
	mirrors := "    registry-mirrors: " + up.Host + "=" + cache.Host + "\n"

	type counts struct {
		Cache    map[string]int // digester's manifest requests at the cache, by path
		Upstream map[string]int // digester's manifest requests at the upstream, by path
	}
	for _, tc := range []struct {
		name       string
		config     string
		images     []string
		wantCode   int
		wantImages []string
		wantMsgs   []string // info and error results, sorted
		want       counts
	}{
		{
			name:   "through the cache",
			config: mirrors,
			images: images,
			wantImages: []string{
				up.Host + "/team/app:1@" + digests["team/app:1"], up.Host + "/team/multi:1@" + digests["team/multi:1"],
				up.Host + "/team/lib:2@" + digests["team/lib:2"], up.Host + "/team/app:1@" + digests["team/app:1"],
			},
			wantMsgs: []string{
				"pinned " + up.Host + "/team/app:1 to " + digests["team/app:1"] + " (answered by mirror " + cache.Host + ") (2 image fields, in no file)",
				"pinned " + up.Host + "/team/lib:2 to " + digests["team/lib:2"] + " (answered by mirror " + cache.Host + ")",
				"pinned " + up.Host + "/team/multi:1 to " + digests["team/multi:1"] + " (answered by mirror " + cache.Host + ")",
				"pinned 4 image fields (3 distinct references, 4 registry requests); 0 already pinned, 0 skipped by prefix",
			},
			want: counts{
				Cache:    map[string]int{"/v2/team/app/manifests/1": 1, "/v2/team/multi/manifests/1": 1, "/v2/team/lib/manifests/2": 1},
				Upstream: map[string]int{},
			},
		},
		{
			name:     "not in the cache, no fallback: the upstream is not asked",
			config:   mirrors,
			images:   []string{"team/missing:1"},
			wantCode: 1,
			wantMsgs: []string{
				"cannot pin " + up.Host + "/team/missing:1: no mirror of registry " + up.Host + " could resolve it, and " + up.Host +
					" itself was not asked (mirror-fallback is off): mirror " + cache.Host + ": repository not found: registry " + cache.Host + " has no repository team/missing",
				"pinned nothing: 1 image field could not be pinned, so the package is returned unchanged (1 distinct reference, 3 registry requests)",
			},
			wantImages: []string{up.Host + "/team/missing:1"},
			want: counts{
				Cache:    map[string]int{"/v2/team/missing/manifests/1": 1},
				Upstream: map[string]int{},
			},
		},
		{
			// The control: without mirrors, the access log of the upstream shows digester's requests.
			name:   "without mirrors, the upstream is asked",
			images: []string{"team/app:1"},
			wantMsgs: []string{
				"pinned 1 image field (1 distinct reference, 2 registry requests); 0 already pinned, 0 skipped by prefix",
				"pinned " + up.Host + "/team/app:1 to " + digests["team/app:1"],
			},
			wantImages: []string{up.Host + "/team/app:1@" + digests["team/app:1"]},
			want: counts{
				Cache:    map[string]int{},
				Upstream: map[string]int{"/v2/team/app/manifests/1": 1},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			upBefore, cacheBefore := logged(t, up), logged(t, cache)
			out := run(t, e, input(tc.config, tc.images), t.TempDir(), digester)
			if out.code != tc.wantCode {
				t.Errorf("exit code %d, want %d; stderr:\n%s", out.code, tc.wantCode, out.stderr)
			}
			if diff := cmp.Diff(tc.wantImages, outputImages(t, out.stdout)); diff != "" {
				t.Errorf("images in the output (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantMsgs, sorted(resultMessages(t, out.stdout))); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
			}
			got := counts{Cache: manifestRequests(logged(t, cache)[len(cacheBefore):]), Upstream: manifestRequests(logged(t, up)[len(upBefore):])}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("digester's manifest requests (-want +got):\n%s", diff)
			}
			for _, r := range []*realregistry.Registry{up, cache} {
				for _, s := range r.Secrets() {
					if strings.Contains(out.stdout+out.stderr, s) {
						t.Errorf("the output holds the credentials of %s", r.Host)
					}
				}
			}
		})
	}
	// The cache is a real pull-through cache: what it served, it fetched from the upstream (with
	// Go's own User-Agent; the test's pushes say go-containerregistry, digester says digester).
	fromCache := func(ua string) bool { return strings.HasPrefix(ua, "Go-http-client") }
	if n := len(manifestRequestsBy(logged(t, up), fromCache)); n == 0 {
		t.Errorf("the upstream's access log shows no request from the cache:\n%s", up.Log())
	}
}

// startRegistry starts a docker-registry for one test.
func startRegistry(t *testing.T, opts ...realregistry.Option) *realregistry.Registry {
	t.Helper()
	r, err := realregistry.Start(t.TempDir(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// logged returns every request r has logged so far.
func logged(t *testing.T, r *realregistry.Registry) []realregistry.Request {
	t.Helper()
	if err := r.Sync(); err != nil {
		t.Fatal(err)
	}
	return r.Requests()
}

// manifestRequests counts digester's manifest requests by path.
func manifestRequests(reqs []realregistry.Request) map[string]int {
	n := map[string]int{}
	for _, q := range manifestRequestsBy(reqs, func(ua string) bool { return strings.HasPrefix(ua, "digester") }) {
		n[q.Path]++
	}
	return n
}

// manifestRequestsBy returns the manifest requests whose User-Agent satisfies ua.
func manifestRequestsBy(reqs []realregistry.Request, ua func(string) bool) []realregistry.Request {
	var out []realregistry.Request
	for _, q := range reqs {
		if strings.Contains(q.Path, "/manifests/") && ua(q.UserAgent) {
			out = append(out, q)
		}
	}
	return out
}

// resultMessages returns the messages of the info and error results of a ResourceList.
func resultMessages(t *testing.T, resourceList string) []string {
	t.Helper()
	rl, err := yaml.Parse(resourceList)
	if err != nil {
		t.Fatalf("output is not a ResourceList: %v\n%s", err, resourceList)
	}
	results, err := rl.Pipe(yaml.Lookup("results"))
	if err != nil || results == nil {
		t.Fatalf("output has no results (%v):\n%s", err, resourceList)
	}
	var msgs []string
	for _, r := range results.Content() {
		rn := yaml.NewRNode(r)
		if sev := rn.Field("severity"); sev != nil && sev.Value.YNode().Value != "warning" {
			msgs = append(msgs, rn.Field("message").Value.YNode().Value)
		}
	}
	return msgs
}
