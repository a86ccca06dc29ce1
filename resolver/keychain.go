package resolver

import (
	"os"

	"github.com/google/go-containerregistry/pkg/authn"
)

// DefaultKeychain is where credentials come from unless WithKeychain says otherwise: the docker
// config (DOCKER_CONFIG or ~/.docker/config.json, with its credsStore and credHelpers), then, for
// ghcr.io only, GITHUB_TOKEN. It contacts no host itself.
var DefaultKeychain = authn.NewMultiKeychain(authn.DefaultKeychain, GitHubKeychain(os.Getenv))

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
