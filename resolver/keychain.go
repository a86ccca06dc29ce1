package resolver

import (
	"context"
	"os"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/google"
)

// DefaultKeychain is where credentials come from unless WithKeychain says otherwise: the docker
// config (DOCKER_CONFIG or ~/.docker/config.json, with its credsStore and credHelpers); then, for
// Google's registries only (gcr.io, *.gcr.io, *.pkg.dev), Application Default Credentials (the
// GOOGLE_APPLICATION_CREDENTIALS file, gcloud's ADC file, or the metadata server) or gcloud; then,
// for ghcr.io only, GITHUB_TOKEN; then, for Amazon ECR private registries only
// (<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn] and the other partitions' domains), a
// token from ecr:GetAuthorizationToken in the registry's region, signed with the AWS default
// credential chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, the shared config and credentials
// files and AWS_PROFILE, web identity as on EKS, SSO, container or instance metadata); then, for
// Azure Container Registry only (<name>.azurecr.io, .azurecr.cn, .azurecr.us), the refresh token
// that the registry's /oauth2/exchange gives for a Microsoft Entra token of azidentity's
// DefaultAzureCredential (AZURE_CLIENT_ID with AZURE_CLIENT_SECRET or a certificate, workload
// identity, managed identity, or an az, azd or PowerShell sign-in), with user
// 00000000-0000-0000-0000-000000000000. ECR and ACR tokens are kept per registry until five minutes
// before they expire; a failure to get one fails that registry's images only. For any other
// registry it contacts nothing.
var DefaultKeychain = authn.NewMultiKeychain(authn.DefaultKeychain, google.Keychain, GitHubKeychain(os.Getenv), defaultECR, defaultACR)

// DefaultKeychain's keychains for Amazon ECR and Azure Container Registry.
var (
	defaultECR = &ecrKeychain{}
	defaultACR = &acrKeychain{}
)

// GitHubKeychain gives ghcr.io, and no other registry, the token in GITHUB_TOKEN (what GitHub
// Actions provides), with GITHUB_ACTOR as the user name ("digester" when unset). getenv reads the
// environment.
func GitHubKeychain(getenv func(string) string) authn.Keychain {
	return githubKeychain{getenv: getenv}
}

type githubKeychain struct{ getenv func(string) string }

func (k githubKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	token := k.getenv("GITHUB_TOKEN")
	if r.RegistryStr() != "ghcr.io" || token == "" {
		return authn.Anonymous, nil
	}
	user := k.getenv("GITHUB_ACTOR")
	if user == "" {
		user = "digester"
	}
	return &authn.Basic{Username: user, Password: token}, nil
}

// tokenMargin is how long before its expiry a cached registry token is fetched anew.
const tokenMargin = 5 * time.Minute

// tokenCache keeps the user name and password fetched for each registry.
type tokenCache struct {
	mu      sync.Mutex
	entries map[string]*cachedBasic // by registry host
}

// lazy returns credentials for host that fetch gets when they are first asked for, and that are
// then kept until tokenMargin before they expire.
func (c *tokenCache) lazy(host string, fetch func(ctx context.Context) (user, password string, expires time.Time, err error)) authn.Authenticator {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]*cachedBasic{}
	}
	e := c.entries[host]
	if e == nil {
		e = &cachedBasic{}
		c.entries[host] = e
	}
	return &lazyBasic{entry: e, fetch: fetch}
}

// forget empties the cache.
func (c *tokenCache) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = nil
}

// cachedBasic is a registry's user name and password, good until expires; mu is held while they
// are fetched, so that concurrent lookups on one registry make one call.
type cachedBasic struct {
	mu       sync.Mutex
	user     string
	password string
	expires  time.Time
}

// valid reports whether c holds a user name and password good for a while yet.
func (c *cachedBasic) valid(now time.Time) bool {
	return c.password != "" && now.Before(c.expires.Add(-tokenMargin))
}

// lazyBasic is basic credentials fetched when first asked for (by authn.Authorization, with the
// lookup's context), then kept in entry until shortly before they expire.
type lazyBasic struct {
	entry *cachedBasic
	fetch func(ctx context.Context) (user, password string, expires time.Time, err error)
}

func (a *lazyBasic) Authorization() (*authn.AuthConfig, error) {
	return a.AuthorizationContext(context.Background())
}

func (a *lazyBasic) AuthorizationContext(ctx context.Context) (*authn.AuthConfig, error) {
	e := a.entry
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.valid(time.Now()) {
		user, password, expires, err := a.fetch(ctx)
		if err != nil {
			return nil, err
		}
		e.user, e.password, e.expires = user, password, expires
	}
	return &authn.AuthConfig{Username: e.user, Password: e.password}, nil
}
