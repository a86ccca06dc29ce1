// Command webhook is digester's mutating admission webhook: it serves AdmissionReviews
// (admission.k8s.io/v1) over HTTPS at /v1/mutate and pins the images of the objects the API server
// sends it, with /healthz, /readyz and Prometheus /metrics on the same port. See package webhook,
// and deploy/webhook for a package that runs it in a cluster.
//
// It is a command and image of its own, not a subcommand of the KRM function, so that the function
// stays small (see the README, "The admission webhook").
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/digester/digester/clusterlock"
	"github.com/digester/digester/config"
	"github.com/digester/digester/digestcache"
	"github.com/digester/digester/pin"
	"github.com/digester/digester/podcreds"
	"github.com/digester/digester/resolver"
	"github.com/digester/digester/webhook"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "digester webhook:", err)
		os.Exit(1)
	}
}

// defaultCredentialRefresh is how long the webhook uses a registry's credentials before it reads
// them anew: well within the shortest life of cloud credentials (a Google access token's hour; the
// GKE metadata server hands them out with five minutes or more left, and a lookup refused in
// between takes a new handshake at once), at the cost of one keychain read, ping and token
// exchange per registry per interval.
const defaultCredentialRefresh = 10 * time.Minute

// flags are the server's own flags; the shared settings are config's.
type flags struct {
	settings          config.Flags
	certFile, keyFile string
	bindAddress       string
	port              int
	cacheTTL          time.Duration
	maxRequestBytes   int64
	maxReviewMemory   int64
	shutdownDelay     time.Duration
	credentialRefresh time.Duration
	pullSecrets       bool
	kubeconfig        string
	scope             string
	lockConfigMaps    lockSources
	staleIfError      time.Duration
}

// lockSources are the values of --lock-configmap, in the order given.
type lockSources []clusterlock.Source

func (l *lockSources) String() string {
	var s []string
	for _, src := range *l {
		s = append(s, src.String())
	}
	return strings.Join(s, ",")
}

func (l *lockSources) Set(v string) error {
	src, err := clusterlock.ParseSource(v)
	if err != nil {
		return err
	}
	*l = append(*l, src)
	return nil
}

// defaultStaleIfError is how long after its lookup a digest may still be used when the registry
// gives no answer: long enough to ride out a registry's usual outage, short enough that a digest
// served is one the webhook itself pinned this hour (README, "GitOps estates and fleets").
const defaultStaleIfError = time.Hour

// defaults are the shared settings' values when nothing is configured: an admission must finish
// within the API server's timeoutSeconds (10 by default), so lookups are bounded far below a CI
// run's.
func defaults() config.Config {
	cfg := config.Default()
	cfg.Timeout = 5 * time.Second
	cfg.Deadline = webhook.DefaultDeadline
	return cfg
}

func parseFlags(args []string, out io.Writer, getenv func(string) string) (flags, config.Config, error) {
	var f flags
	fs := flag.NewFlagSet("webhook", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintln(out, "Usage: digester-webhook --tls-cert-file=FILE --tls-private-key-file=FILE [flags]")
		fmt.Fprintln(out, "\nServes digester's mutating admission webhook over HTTPS at /v1/mutate, with /healthz, /readyz and /metrics.")
		fmt.Fprintln(out, "Every setting of digester pin is a flag of the same name, and --config reads the same functionConfig file;")
		fmt.Fprintln(out, "here --timeout defaults to 5s and --deadline to 8s, so that an admission ends within the API server's timeout.")
		fmt.Fprintln(out, "\nFlags:")
		fs.PrintDefaults()
	}
	f.settings.Register(fs)
	fs.StringVar(&f.certFile, "tls-cert-file", "", "serving certificate (PEM), read again when it changes")
	fs.StringVar(&f.keyFile, "tls-private-key-file", "", "serving certificate's private key (PEM), read again when it changes")
	fs.StringVar(&f.bindAddress, "bind-address", "", "address to listen on (default: all interfaces)")
	fs.IntVar(&f.port, "port", 8443, "port to listen on")
	fs.DurationVar(&f.cacheTTL, "cache-ttl", digestcache.DefaultTTL, "how long a tag's digest is reused; 0 disables the cache (concurrent admissions still share lookups)")
	fs.Int64Var(&f.maxRequestBytes, "max-request-bytes", webhook.DefaultMaxRequestBytes, "larger requests are answered 400")
	fs.Int64Var(&f.maxReviewMemory, "max-review-memory", webhook.DefaultMaxReviewMemory, "bytes of memory the reviews in flight may take together (reckoned from their size and JSON values); beyond it a review is answered 429 with Retry-After and the API server retries it, or 413 if it alone needs more")
	fs.DurationVar(&f.shutdownDelay, "shutdown-delay", 5*time.Second, "on SIGTERM, how long to keep serving while unready before draining")
	fs.DurationVar(&f.credentialRefresh, "credential-refresh", defaultCredentialRefresh, "how long a registry's credentials and tokens are used before they are read and exchanged anew; 0 keeps the first for the process's life")
	fs.BoolVar(&f.pullSecrets, "pull-secrets", true, "look images up with the credentials of the pod spec's imagePullSecrets and its ServiceAccount's, read from the cluster (needs get on secrets and serviceaccounts), before the webhook's own")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file to read pull secrets and lock ConfigMaps with (default: the pod's in-cluster ServiceAccount)")
	fs.StringVar(&f.scope, "scope", string(webhook.ScopeWorkloads), "what is pinned: workloads (every object with images) or pods (Pods only: workloads stay as written in Git, the Pods their controllers create are pinned)")
	fs.Var(&f.lockConfigMaps, "lock-configmap", "NAMESPACE/NAME of a ConfigMap whose key digests.lock.yaml holds a DigestLock (digester pin --lock update writes one): the references it lists are pinned to its digests with no registry request, and its edits followed; repeatable, the first listed wins a disagreement (needs get, list and watch on it)")
	fs.DurationVar(&f.staleIfError, "stale-if-error", defaultStaleIfError, "when a registry gives no answer (unreachable, timeout, 5xx, 429), use a digest the webhook resolved less than this long ago, with a warning; 0: refuse")
	if err := fs.Parse(args); err != nil {
		if e := f.settings.Err(); e != nil {
			err = e
		}
		return f, config.Config{}, err
	}
	if fs.NArg() > 0 {
		return f, config.Config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg, err := f.settings.Config(defaults(), getenv)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	if err == nil && (cfg.Lock != pin.LockAuto || cfg.LockFile != config.DefaultLockFile) {
		errs = append(errs, errors.New("lock, lock-file: the webhook reads and writes no package lock"))
	}
	if f.certFile == "" || f.keyFile == "" {
		errs = append(errs, errors.New("--tls-cert-file and --tls-private-key-file are required"))
	}
	if f.maxRequestBytes < 1 || f.maxReviewMemory < 1 {
		errs = append(errs, errors.New("--max-request-bytes and --max-review-memory must be at least 1"))
	}
	if f.credentialRefresh < 0 {
		errs = append(errs, fmt.Errorf("--credential-refresh=%s: want 0 or more", f.credentialRefresh))
	}
	if _, err := webhook.ParseScope(f.scope); err != nil {
		errs = append(errs, fmt.Errorf("--scope: %w", err))
	}
	if f.staleIfError < 0 {
		errs = append(errs, fmt.Errorf("--stale-if-error=%s: want 0 or more", f.staleIfError))
	}
	if f.port < 1 || f.port > 65535 {
		errs = append(errs, fmt.Errorf("--port=%d: want 1-65535", f.port))
	}
	return f, cfg, errors.Join(errs...)
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	f, cfg, err := parseFlags(args, stderr, os.Getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	certs, err := webhook.LoadCertificates(f.certFile, f.keyFile, log)
	if err != nil {
		return err
	}
	resolverOpts := append(cfg.ResolverOptions(),
		resolver.WithHandshakeRetry(time.Second),
		resolver.WithCredentialRefresh(f.credentialRefresh),
		resolver.WithUserAgent("digester-webhook"),
	)
	var client kubernetes.Interface
	if f.pullSecrets || len(f.lockConfigMaps) > 0 {
		if client, err = kubeClient(f.kubeconfig); err != nil {
			return err
		}
	}
	cacheOpts := []digestcache.Option{digestcache.WithTTL(f.cacheTTL), digestcache.WithStaleIfError(f.staleIfError)}
	var locks *clusterlock.Watcher
	if len(f.lockConfigMaps) > 0 {
		if locks, err = clusterlock.New(client, f.lockConfigMaps, clusterlock.WithPlatform(platformString(cfg)), clusterlock.WithLogger(log)); err != nil {
			return err
		}
		locks.Start(ctx)
		cacheOpts = append(cacheOpts, digestcache.WithLock(locks.Digest))
	}
	cache := digestcache.New(resolver.New(resolverOpts...), cacheOpts...)
	var counters webhook.Counters = cache
	scope, _ := webhook.ParseScope(f.scope) // checked by parseFlags
	opts := []webhook.Option{webhook.WithLogger(log), webhook.WithMaxRequestBytes(f.maxRequestBytes), webhook.WithMaxReviewMemory(f.maxReviewMemory), webhook.WithScope(scope)}
	if f.pullSecrets {
		// Each set of pull-secret credentials gets a resolver (and so registry tokens) and a cache
		// of its own, its keychain tried before the webhook's own; the locks come first in each.
		pool := podcreds.NewPool(podcreds.NewReader(client, podcreds.WithTTL(f.cacheTTL)), cache, func(kc authn.Keychain) podcreds.Lookup {
			res := resolver.New(append(slices.Clip(resolverOpts), resolver.WithKeychain(authn.NewMultiKeychain(kc, resolver.DefaultKeychain)))...)
			return digestcache.New(res, cacheOpts...)
		})
		counters = pool
		opts = append(opts, webhook.WithPodCredentials(pool))
	}
	metrics := webhook.NewMetrics(counters)
	h := webhook.NewHandler(cache, cfg.Options, append(opts, webhook.WithMetrics(metrics))...)
	ln, err := net.Listen("tcp", net.JoinHostPort(f.bindAddress, strconv.Itoa(f.port)))
	if err != nil {
		return err
	}
	log.Info("serving", "address", ln.Addr().String(), "scope", f.scope, "onError", cfg.OnError.String(), "mode", cfg.Mode.String(), "pinned", cfg.Pinned.String(),
		"deadline", cfg.Deadline.String(), "cacheTTL", f.cacheTTL.String(), "staleIfError", f.staleIfError.String(), "lockConfigMaps", f.lockConfigMaps.String())
	srvOpts := []webhook.ServerOption{webhook.WithServerLogger(log), webhook.WithShutdownDelay(f.shutdownDelay), webhook.WithDrainTimeout(cfg.Deadline + 2*time.Second)}
	if locks != nil {
		metrics.WatchLocks(locks.Rejected)
		srvOpts = append(srvOpts, webhook.WithReadyWhen(func() (bool, string) {
			return locks.Synced(), "the lock ConfigMaps are not read yet"
		}))
	}
	srv := webhook.NewServer(h, metrics, certs, srvOpts...)
	if err := srv.Serve(ctx, ln); err != nil {
		return err
	}
	log.Info("drained, exiting")
	return nil
}

// platformString is the platform the webhook pins for as a DigestLock records it: "" for none.
func platformString(cfg config.Config) string {
	if cfg.Platform == nil {
		return ""
	}
	return cfg.Platform.String()
}

// kubeClient is a client of the cluster whose pull secrets the webhook reads: from kubeconfig, or
// the pod's in-cluster ServiceAccount when it is empty.
func kubeClient(kubeconfig string) (kubernetes.Interface, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("reading pull secrets and lock ConfigMaps needs a cluster (--kubeconfig, or run in a pod), or pass --pull-secrets=false and no --lock-configmap: %w", err)
	}
	// The client's default of 5 requests/s would queue a burst of admissions from new namespaces.
	cfg.QPS, cfg.Burst = 50, 100
	cfg.UserAgent = "digester-webhook"
	return kubernetes.NewForConfig(cfg)
}
