// Package podcreds reads from the cluster the registry credentials a Pod pulls its images with — its
// imagePullSecrets and its ServiceAccount's — as the kubelet would, so that the admission webhook
// looks a private image up with the credentials its Pod will run with, and with no one else's.
//
// Reader reads them (get on serviceaccounts and secrets, nothing else) and remembers them for a
// short time. Pool keeps one lookup (a resolver behind a digest cache) per distinct set of
// credentials: a digest found with one namespace's pull secret is never served to a Pod without it,
// and registry tokens are never shared between credentials.
package podcreds

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	kauth "github.com/google/go-containerregistry/pkg/authn/kubernetes"
	corev1 "k8s.io/api/core/v1"
	k8serrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/digester/digester/webhook"
)

// DefaultTTL is how long Reader reuses what it read: a new or rotated pull secret is seen within it.
const DefaultTTL = 60 * time.Second

// Pod names the credentials of a pod spec: where it runs and what it pulls with. It is the
// webhook's own type, which the webhook's handler fills in; no credentials are read for an empty
// Namespace.
type Pod = webhook.Pod

// Credentials are the registry credentials of a Pod.
type Credentials struct {
	// Keychain answers for the registries the secrets name; nil when there are none.
	Keychain authn.Keychain
	// ID identifies the credentials by content (a SHA-256 of the secrets' docker configs, in the
	// order the kubelet tries them); empty when there are none. Pods whose secrets hold the same
	// credentials share it, whatever the secrets are called.
	ID string
}

// Reader reads Pods' credentials from the cluster. It is safe for concurrent use.
type Reader struct {
	client kubernetes.Interface
	ttl    time.Duration
	now    func() time.Time

	mu        sync.Mutex
	entries   map[string]*read
	lastSweep time.Time
}

// read is one reading, in flight until done is closed.
type read struct {
	done     chan struct{}
	creds    Credentials
	problems []string
	expires  time.Time
}

// Option configures a Reader.
type Option func(*Reader)

// WithTTL sets how long a reading is reused (default DefaultTTL); zero or less reads every time.
// Readings that met a problem are never reused.
func WithTTL(d time.Duration) Option { return func(r *Reader) { r.ttl = d } }

// WithClock sets where the time comes from (default time.Now), for tests.
func WithClock(now func() time.Time) Option { return func(r *Reader) { r.now = now } }

// NewReader returns a Reader that reads through client.
func NewReader(client kubernetes.Interface, opts ...Option) *Reader {
	r := &Reader{client: client, ttl: DefaultTTL, now: time.Now, entries: map[string]*read{}}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Read returns p's credentials: those of the secrets in p.PullSecrets, then those of the secrets in
// its ServiceAccount's imagePullSecrets, as the kubelet tries them. Problems (a secret or the
// ServiceAccount missing or unreadable, a secret of another type or with a malformed docker config)
// are returned in plain words naming the object; the credentials found despite them are still
// returned, as the kubelet still pulls with them. Concurrent calls for one Pod share one reading.
func (r *Reader) Read(ctx context.Context, p Pod) (Credentials, []string) {
	if p.Namespace == "" {
		return Credentials{}, nil
	}
	if p.ServiceAccount == "" {
		p.ServiceAccount = "default"
	}
	k := p.Namespace + "\x00" + p.ServiceAccount + "\x00" + strings.Join(p.PullSecrets, "\x00")
	r.mu.Lock()
	now := r.now()
	r.sweep(now)
	e, ok := r.entries[k]
	if ok && !e.expires.IsZero() && !now.Before(e.expires) {
		ok = false
	}
	if !ok {
		e = &read{done: make(chan struct{})}
		r.entries[k] = e
	}
	r.mu.Unlock()

	if !ok {
		e.creds, e.problems = r.read(context.WithoutCancel(ctx), p)
		r.mu.Lock()
		e.expires = r.now().Add(r.ttl)
		if len(e.problems) > 0 && r.entries[k] == e { // with a TTL of 0 or less, it has expired already
			delete(r.entries, k)
		}
		r.mu.Unlock()
		close(e.done)
	}
	select {
	case <-e.done:
		return e.creds, e.problems
	case <-ctx.Done():
		return Credentials{}, []string{fmt.Sprintf("gave up reading the pull secrets of ServiceAccount %s/%s: %v", p.Namespace, p.ServiceAccount, ctx.Err())}
	}
}

// sweep drops expired readings, at most once per TTL, so that a Pod seen once is not remembered
// forever and an admission does not walk every reading. r.mu is held.
func (r *Reader) sweep(now time.Time) {
	if now.Sub(r.lastSweep) < r.ttl {
		return
	}
	r.lastSweep = now
	for k, e := range r.entries {
		if !e.expires.IsZero() && !now.Before(e.expires) {
			delete(r.entries, k)
		}
	}
}

// read reads p's secrets. Reads are bounded by timeout, so that one slow API server call cannot
// hold the Pods waiting on it past their admission.
func (r *Reader) read(ctx context.Context, p Pod) (Credentials, []string) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	var problems []string
	names := append([]string(nil), p.PullSecrets...)
	sa, err := r.client.CoreV1().ServiceAccounts(p.Namespace).Get(ctx, p.ServiceAccount, metav1.GetOptions{})
	switch {
	case k8serrors.IsNotFound(err):
		problems = append(problems, fmt.Sprintf("ServiceAccount %s/%s not found: its pull secrets are not used", p.Namespace, p.ServiceAccount))
	case err != nil:
		problems = append(problems, fmt.Sprintf("cannot read ServiceAccount %s/%s: %v", p.Namespace, p.ServiceAccount, err))
	default:
		for _, ref := range sa.ImagePullSecrets {
			names = append(names, ref.Name)
		}
	}

	var keychains []authn.Keychain
	seen := map[string]bool{}
	h := sha256.New()
	for _, n := range names {
		if seen[n] || n == "" {
			continue
		}
		seen[n] = true
		s, err := r.client.CoreV1().Secrets(p.Namespace).Get(ctx, n, metav1.GetOptions{})
		switch {
		case k8serrors.IsNotFound(err):
			problems = append(problems, fmt.Sprintf("pull secret %s/%s not found", p.Namespace, n))
			continue
		case err != nil:
			problems = append(problems, fmt.Sprintf("cannot read pull secret %s/%s: %v", p.Namespace, n, err))
			continue
		}
		data, ok := dockerConfig(s)
		if !ok {
			problems = append(problems, fmt.Sprintf("pull secret %s/%s (type %q) holds no docker config (%s or %s): not used", p.Namespace, n, s.Type, corev1.DockerConfigJsonKey, corev1.DockerConfigKey))
			continue
		}
		// Each secret is a keychain of its own, so that a malformed one is named and the rest still
		// used; the kubelet tries them in order, as the multi-keychain below does.
		kc, err := kauth.NewFromPullSecrets(ctx, []corev1.Secret{*s})
		if err != nil {
			problems = append(problems, fmt.Sprintf("pull secret %s/%s: malformed docker config: not used", p.Namespace, n))
			continue
		}
		keychains = append(keychains, kc)
		fmt.Fprintf(h, "%s\x00%d\x00", s.Type, len(data))
		h.Write(data)
	}
	if len(keychains) == 0 {
		return Credentials{}, problems
	}
	return Credentials{Keychain: authn.NewMultiKeychain(keychains...), ID: hex.EncodeToString(h.Sum(nil))}, problems
}

// readTimeout bounds one reading of a Pod's credentials.
const readTimeout = 3 * time.Second

// dockerConfig returns the docker config a pull secret holds, as the kubelet reads it: the key of
// its type.
func dockerConfig(s *corev1.Secret) ([]byte, bool) {
	var key string
	switch s.Type {
	case corev1.SecretTypeDockerConfigJson:
		key = corev1.DockerConfigJsonKey
	case corev1.SecretTypeDockercfg:
		key = corev1.DockerConfigKey
	default:
		return nil, false
	}
	b, ok := s.Data[key]
	return b, ok && len(b) > 0
}
