package podcreds_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	corev1 "k8s.io/api/core/v1"
	k8serrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/digester/digester/podcreds"
)

// dockerConfigJSON is a kubernetes.io/dockerconfigjson secret giving user:pass for host.
func dockerConfigJSON(ns, name, host, user, pass string) *corev1.Secret {
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: fmt.Appendf(nil, `{"auths":{%q:{"auth":%q}}}`, host, auth)},
	}
}

// dockercfg is a legacy kubernetes.io/dockercfg secret giving user:pass for host.
func dockercfg(ns, name, host, user, pass string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Type:       corev1.SecretTypeDockercfg,
		Data:       map[string][]byte{corev1.DockerConfigKey: fmt.Appendf(nil, `{%q:{"username":%q,"password":%q}}`, "https://"+host, user, pass)},
	}
}

func serviceAccount(ns, name string, pullSecrets ...string) *corev1.ServiceAccount {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	for _, s := range pullSecrets {
		sa.ImagePullSecrets = append(sa.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
	}
	return sa
}

// user returns who kc authenticates as on host ("" for anonymous).
func user(t *testing.T, kc authn.Keychain, host string) string {
	t.Helper()
	if kc == nil {
		return ""
	}
	reg, err := name.NewRegistry(host)
	if err != nil {
		t.Fatal(err)
	}
	a, err := kc.Resolve(reg)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := a.Authorization()
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Username
}

func TestRead(t *testing.T) {
	objects := []runtime.Object{
		dockerConfigJSON("team", "mine", "private.example", "pod-user", "pod-pass"),
		dockerConfigJSON("team", "shared", "private.example", "sa-user", "sa-pass"),
		dockercfg("team", "legacy", "legacy.example:5000", "old-user", "old-pass"),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "opaque"}, Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"token": []byte("x")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "empty"}, Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: {}}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "broken"}, Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":`)}},
		serviceAccount("team", "default"),
		serviceAccount("team", "builder", "shared", "legacy"),
		serviceAccount("team", "careless", "gone"),
	}
	tests := []struct {
		name     string
		pod      podcreds.Pod
		want     map[string]string // host -> user name the keychain gives
		problems []string
	}{{
		name: "no secrets",
		pod:  podcreds.Pod{Namespace: "team"},
		want: map[string]string{"private.example": "", "legacy.example:5000": ""},
	}, {
		name: "the pod's own secret",
		pod:  podcreds.Pod{Namespace: "team", PullSecrets: []string{"mine"}},
		want: map[string]string{"private.example": "pod-user", "legacy.example:5000": ""},
	}, {
		name: "the service account's secrets, a dockercfg among them",
		pod:  podcreds.Pod{Namespace: "team", ServiceAccount: "builder"},
		want: map[string]string{"private.example": "sa-user", "legacy.example:5000": "old-user"},
	}, {
		name: "the pod's secret comes before its service account's, as the kubelet tries them",
		pod:  podcreds.Pod{Namespace: "team", ServiceAccount: "builder", PullSecrets: []string{"mine"}},
		want: map[string]string{"private.example": "pod-user", "legacy.example:5000": "old-user"},
	}, {
		name: "missing, opaque and malformed secrets are named, and the good one still used",
		pod:  podcreds.Pod{Namespace: "team", ServiceAccount: "careless", PullSecrets: []string{"opaque", "empty", "broken", "mine"}},
		want: map[string]string{"private.example": "pod-user"},
		problems: []string{
			`pull secret team/opaque (type "Opaque") holds no docker config (.dockerconfigjson or .dockercfg): not used`,
			`pull secret team/empty (type "kubernetes.io/dockerconfigjson") holds no docker config (.dockerconfigjson or .dockercfg): not used`,
			"pull secret team/broken: malformed docker config: not used",
			"pull secret team/gone not found",
		},
	}, {
		name:     "a missing service account",
		pod:      podcreds.Pod{Namespace: "team", ServiceAccount: "nobody", PullSecrets: []string{"mine"}},
		want:     map[string]string{"private.example": "pod-user"},
		problems: []string{"ServiceAccount team/nobody not found: its pull secrets are not used"},
	}, {
		name: "another namespace's secret of the same name is not read",
		pod:  podcreds.Pod{Namespace: "other", PullSecrets: []string{"mine"}},
		want: map[string]string{"private.example": ""},
		problems: []string{
			"ServiceAccount other/default not found: its pull secrets are not used",
			"pull secret other/mine not found",
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := podcreds.NewReader(fake.NewClientset(objects...))
			creds, problems := r.Read(context.Background(), tt.pod)
			got := map[string]string{}
			for host := range tt.want {
				got[host] = user(t, creds.Keychain, host)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("user by registry (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.problems, problems); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if (creds.ID == "") != (creds.Keychain == nil) {
				t.Errorf("ID %q with keychain %v: want an ID exactly when there are credentials", creds.ID, creds.Keychain)
			}
		})
	}
}

// TestID: credentials are identified by content, in order: the same secrets under other names or
// in another namespace share an ID; a rotated password or another order does not.
func TestID(t *testing.T) {
	c := fake.NewClientset(
		dockerConfigJSON("a", "x", "private.example", "u", "p1"),
		dockerConfigJSON("a", "y", "other.example", "u", "p2"),
		dockerConfigJSON("b", "renamed", "private.example", "u", "p1"),
		dockerConfigJSON("b", "rotated", "private.example", "u", "p1-new"),
		dockerConfigJSON("b", "y", "other.example", "u", "p2"),
		serviceAccount("a", "default"), serviceAccount("b", "default"),
	)
	r := podcreds.NewReader(c)
	id := func(ns string, secrets ...string) string {
		creds, problems := r.Read(context.Background(), podcreds.Pod{Namespace: ns, PullSecrets: secrets})
		if len(problems) > 0 {
			t.Fatalf("%s %v: %v", ns, secrets, problems)
		}
		return creds.ID
	}
	if id("a", "x") != id("b", "renamed") {
		t.Error("the same credentials under another name and namespace got another ID")
	}
	if id("a", "x") == id("b", "rotated") {
		t.Error("a rotated password kept its ID: a digest found with the old one would be served for the new")
	}
	if id("a", "x", "y") == id("a", "y", "x") {
		t.Error("secrets in another order share an ID, but the kubelet tries them in order")
	}
	if id("a", "x", "x") != id("a", "x") {
		t.Error("a secret listed twice (by the pod and its ServiceAccount) counted twice")
	}
	if id("a", "x", "y") != id("b", "renamed", "y") {
		t.Error("the same pair of credentials got two IDs")
	}
}

// TestReadCaching: a reading is reused within the TTL and read again after it; one that met a
// problem is never reused, so a secret created after a failed admission is seen at the next.
func TestReadCaching(t *testing.T) {
	c := fake.NewClientset(dockerConfigJSON("team", "mine", "private.example", "u", "p"), serviceAccount("team", "default"))
	now := time.Unix(1000, 0)
	r := podcreds.NewReader(c, podcreds.WithTTL(time.Minute), podcreds.WithClock(func() time.Time { return now }))
	gets := func() int {
		n := len(c.Actions())
		c.ClearActions()
		return n
	}
	ctx := context.Background()
	good := podcreds.Pod{Namespace: "team", PullSecrets: []string{"mine"}}
	missing := podcreds.Pod{Namespace: "team", PullSecrets: []string{"later"}}
	var got []int
	r.Read(ctx, good)
	got = append(got, gets()) // service account and secret
	r.Read(ctx, good)
	got = append(got, gets()) // reused
	now = now.Add(time.Minute)
	r.Read(ctx, good)
	got = append(got, gets()) // expired: read again
	r.Read(ctx, missing)
	got = append(got, gets())
	c.Tracker().Add(dockerConfigJSON("team", "later", "private.example", "u", "p"))
	creds, problems := r.Read(ctx, missing)
	got = append(got, gets())
	if diff := cmp.Diff([]int{2, 0, 2, 2, 2}, got); diff != "" {
		t.Errorf("API requests per Read (-want +got):\n%s", diff)
	}
	if creds.ID == "" || len(problems) > 0 {
		t.Errorf("after the secret was created: ID %q, problems %v; want credentials and no problem", creds.ID, problems)
	}

	r = podcreds.NewReader(c, podcreds.WithTTL(0))
	r.Read(ctx, good)
	r.Read(ctx, good)
	if n := gets(); n != 4 {
		t.Errorf("with TTL 0, two Reads sent %d requests, want 4", n)
	}
}

// TestReadForbidden: without RBAC to read secrets, the problem names the secret and the API
// server's answer, and nothing else is lost.
func TestReadForbidden(t *testing.T) {
	c := fake.NewClientset(dockerConfigJSON("team", "mine", "private.example", "u", "p"), serviceAccount("team", "default"))
	c.PrependReactor("get", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, k8serrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "mine", fmt.Errorf("RBAC: access denied"))
	})
	creds, problems := podcreds.NewReader(c).Read(context.Background(), podcreds.Pod{Namespace: "team", PullSecrets: []string{"mine"}})
	want := []string{`cannot read pull secret team/mine: secrets "mine" is forbidden: RBAC: access denied`}
	if diff := cmp.Diff(want, problems); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	if creds.Keychain != nil {
		t.Error("got a keychain from a secret that could not be read")
	}
}

// TestReadNoNamespace: a cluster-scoped object has no pull secrets; nothing is read.
func TestReadNoNamespace(t *testing.T) {
	c := fake.NewClientset()
	creds, problems := podcreds.NewReader(c).Read(context.Background(), podcreds.Pod{PullSecrets: []string{"x"}})
	if creds.Keychain != nil || problems != nil || len(c.Actions()) != 0 {
		t.Errorf("got %+v, %v after %d API requests; want nothing, and no request", creds, problems, len(c.Actions()))
	}
}
