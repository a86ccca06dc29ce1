package resolver

import (
	"os"

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
