package resolver_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/digester/digester/resolver"
)

const (
	entraHost    = "login.fake-entra.example"
	entraTenant  = "11111111-2222-3333-4444-555555555555"
	entraClient  = "66666666-7777-8888-9999-000000000000"
	entraSecret  = "fake~client~secret~0123456789abcdef"
	entraToken   = "eyFakeEntraAccessToken.0123456789abcdefghijklmnop"
	acrAnonymous = "00000000-0000-0000-0000-000000000000"
	federatedJWT = "eyFakeProjectedServiceAccountToken.0123456789"
	msiHost      = "msi.fake-app-service.example"
	msiHeader    = "fake-identity-header-0123456789"
)

// fakeACR is Microsoft Entra and an ACR token exchange, served beside the registry by demanding.
type fakeACR struct {
	host         string // the ACR registry
	refreshToken string // what the exchange returns
	exchangeFail bool   // the exchange answers 401

	mu    sync.Mutex
	posts []string // "host path" of each token request and exchange, and "scope=..." of each Entra token request
	calls int      // every request, GET or POST
}

// serve answers the requests meant for Entra (instance and tenant discovery, the token endpoint,
// on any host name but the registries') and the registry's /oauth2/exchange.
func (f *fakeACR) serve(w http.ResponseWriter, r *http.Request) bool {
	tenant := "https://" + entraHost + "/" + entraTenant
	var reply any
	status := http.StatusOK
	switch {
	case r.URL.Path == "/common/discovery/instance":
		reply = map[string]any{"api-version": "1.1", "tenant_discovery_endpoint": tenant + "/v2.0/.well-known/openid-configuration",
			"metadata": []map[string]any{{"preferred_network": entraHost, "preferred_cache": entraHost, "aliases": []string{entraHost}}}}
	case r.URL.Path == "/"+entraTenant+"/v2.0/.well-known/openid-configuration":
		reply = map[string]any{"token_endpoint": tenant + "/oauth2/v2.0/token", "authorization_endpoint": tenant + "/oauth2/v2.0/authorize", "issuer": tenant + "/v2.0"}
	case r.URL.Path == "/"+entraTenant+"/oauth2/v2.0/token" && r.Method == http.MethodPost:
		r.ParseForm()
		f.record(r.Host+" "+r.URL.Path, "scope="+r.PostForm.Get("scope"))
		secret := r.PostForm.Get("client_secret") == entraSecret
		federated := r.PostForm.Get("client_assertion") == federatedJWT && r.PostForm.Get("client_assertion_type") == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
		if r.PostForm.Get("client_id") != entraClient || !secret && !federated {
			status, reply = http.StatusUnauthorized, map[string]any{"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}
			break
		}
		reply = map[string]any{"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600, "access_token": entraToken}
	case r.URL.Path == "/msi/token" && r.Host == msiHost:
		q := r.URL.Query()
		f.record(r.Host + " " + r.URL.Path + " resource=" + q.Get("resource") + " client_id=" + q.Get("client_id"))
		if r.Header.Get("X-IDENTITY-HEADER") != msiHeader {
			status, reply = http.StatusUnauthorized, map[string]any{"error": "unauthorized"}
			break
		}
		reply = map[string]any{"token_type": "Bearer", "access_token": entraToken, "resource": q.Get("resource"), "expires_on": fmt.Sprint(time.Now().Add(time.Hour).Unix())}
	case r.URL.Path == "/oauth2/exchange" && r.Host == f.host && r.Method == http.MethodPost:
		r.ParseForm()
		f.record(r.Host + " " + r.URL.Path)
		got := map[string]string{"grant_type": r.PostForm.Get("grant_type"), "service": r.PostForm.Get("service"), "access_token": r.PostForm.Get("access_token")}
		if f.exchangeFail || !cmp.Equal(got, map[string]string{"grant_type": "access_token", "service": f.host, "access_token": entraToken}) {
			status, reply = http.StatusUnauthorized, map[string]any{"errors": []map[string]string{{"code": "UNAUTHORIZED", "message": "authentication required for " + entraToken}}}
			break
		}
		reply = map[string]string{"refresh_token": f.refreshToken}
	default:
		return false
	}
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(reply)
	return true
}

func (f *fakeACR) record(s ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.posts = append(f.posts, s...)
}

// seen returns the token requests recorded so far, and how many requests Entra and the exchange had.
func (f *fakeACR) seen() ([]string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.posts), f.calls
}

// managedIdentities numbers the user-assigned managed identities of the tests: MSAL keeps managed
// identity tokens in a cache of the process, by identity, so each test needs one of its own.
var managedIdentities atomic.Int64

// entraEnv makes DefaultAzureCredential one credential, and nothing else (no IMDS probe, no az
// CLI): a service principal of the fake Entra with secret; or, with secret "workload", AKS
// workload identity with a federated token file; or, with secret "managed", a user-assigned
// managed identity of App Service (IDENTITY_ENDPOINT and IDENTITY_HEADER). It returns the client
// ID.
func entraEnv(t *testing.T, secret string) (client string) {
	t.Helper()
	only, file, msi, header, client := "EnvironmentCredential", "", "", "", entraClient
	switch secret {
	case "workload":
		only, file, secret = "WorkloadIdentityCredential", filepath.Join(t.TempDir(), "azure-identity-token"), ""
		if err := os.WriteFile(file, []byte(federatedJWT), 0o600); err != nil {
			t.Fatal(err)
		}
	case "managed":
		only, msi, header, secret = "ManagedIdentityCredential", "https://"+msiHost+"/msi/token", msiHeader, ""
		client = fmt.Sprintf("99999999-0000-0000-0000-%012d", managedIdentities.Add(1))
	}
	for k, v := range map[string]string{
		"AZURE_TOKEN_CREDENTIALS": only, "AZURE_AUTHORITY_HOST": "https://" + entraHost + "/", "AZURE_FEDERATED_TOKEN_FILE": file,
		"IDENTITY_ENDPOINT": msi, "IDENTITY_HEADER": header, "MSI_ENDPOINT": "", "IDENTITY_SERVER_THUMBPRINT": "", "IMDS_ENDPOINT": "",
		"AZURE_TENANT_ID": entraTenant, "AZURE_CLIENT_ID": client, "AZURE_CLIENT_SECRET": secret,
		"AZURE_CLIENT_CERTIFICATE_PATH": "", "AZURE_USERNAME": "",
		"AZURE_REGIONAL_AUTHORITY_NAME": "", "DOCKER_CONFIG": t.TempDir(), "GITHUB_TOKEN": "",
	} {
		t.Setenv(k, v)
	}
	return client
}

// refreshJWT is an ACR refresh token of the form ACR gives: a JWT, here expiring at exp.
func refreshJWT(exp time.Time) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." +
		enc([]byte(fmt.Sprintf(`{"exp":%d,"grant_type":"refresh_token","tenant":%q}`, exp.Unix(), entraTenant))) + ".c2lnbmF0dXJl"
}

// TestACRCredentials: the default keychain gets a Microsoft Entra token for a service principal
// in the environment, or for AKS workload identity (a fake Entra, named by AZURE_AUTHORITY_HOST, served on loopback), exchanges
// it at the registry's /oauth2/exchange for a refresh token, and sends that as the password. A
// refresh token that says when it expires is kept, and one that does not is asked for again on
// the next run; a run against another registry makes no Entra or exchange call.
func TestACRCredentials(t *testing.T) {
	const host = "digestertest.azurecr.io"
	principal := []string{entraHost + " /" + entraTenant + "/oauth2/v2.0/token", "scope=https://management.azure.com/.default openid offline_access profile"}
	for _, tc := range []struct {
		name      string
		secret    string // as entraEnv takes it
		entra     []string
		refresh   string
		exchanges int // over two runs
	}{
		{name: "expiring in 3h, kept", secret: entraSecret, entra: principal, refresh: refreshJWT(time.Now().Add(3 * time.Hour)), exchanges: 1},
		{name: "expiring in a minute, not kept", secret: entraSecret, entra: principal, refresh: refreshJWT(time.Now().Add(time.Minute)), exchanges: 2},
		{name: "no expiry, not kept", secret: entraSecret, entra: principal, refresh: "opaque-refresh-token-0123456789", exchanges: 2},
		{name: "workload identity", secret: "workload", entra: principal, refresh: refreshJWT(time.Now().Add(3 * time.Hour)), exchanges: 1},
		{name: "managed identity", secret: "managed", entra: []string{msiHost + " /msi/token resource=https://management.azure.com client_id={client}"}, refresh: refreshJWT(time.Now().Add(3 * time.Hour)), exchanges: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := entraEnv(t, tc.secret)
			f := &fakeACR{host: host, refreshToken: tc.refresh}
			want := "Basic " + base64.StdEncoding.EncodeToString([]byte(acrAnonymous+":"+tc.refresh))
			reg, digests, sent := demandingBeside(t, f.serve, host, want, host+"/acme/app:1", "quay.io/other/app:1")
			t.Cleanup(resolver.SetACRTransport(reg.Transport()))

			resolve := func(ref string) {
				t.Helper()
				res := resolver.New(resolver.WithTransport(reg.Transport())).Resolve(context.Background(), []string{ref})
				if res[ref].Err != nil || res[ref].Digest != digests[ref] {
					t.Fatalf("%s: got %+v, want %s", ref, res[ref], digests[ref])
				}
			}
			resolve("quay.io/other/app:1")
			if posts, calls := f.seen(); calls != 0 {
				t.Errorf("a run against quay.io made %d Entra or exchange calls: %v", calls, posts)
			}
			resolve(host + "/acme/app:1")
			resolve(host + "/acme/app:1")

			// MSAL keeps the Entra token: one token request, for Resource Manager.
			var wantPosts []string
			for _, p := range tc.entra {
				wantPosts = append(wantPosts, strings.ReplaceAll(p, "{client}", client))
			}
			for range tc.exchanges {
				wantPosts = append(wantPosts, host+" /oauth2/exchange")
			}
			posts, _ := f.seen()
			if diff := cmp.Diff(wantPosts, posts); diff != "" {
				t.Errorf("token requests to Entra and the exchange (-want +got):\n%s", diff)
			}
			wantAuth := map[string][]string{"quay.io": {"", ""}, host: {"", want, "", want}}
			if diff := cmp.Diff(wantAuth, sent()); diff != "" {
				t.Errorf("Authorization sent, by host (-want +got):\n%s", diff)
			}
		})
	}
}

// TestACRCredentialsFail: when Entra refuses the service principal, or the registry refuses the
// exchange, the image on that registry fails with an error that names the registry and the
// reason, and holds no secret or token; an image on another registry in the same run is resolved.
func TestACRCredentialsFail(t *testing.T) {
	const host = "deniedtest.azurecr.io"
	for _, tc := range []struct {
		name, secret string
		exchangeFail bool
		want         []string
	}{
		{name: "Entra refuses", secret: "wrong~secret~0123456789", want: []string{
			"DefaultAzureCredential: failed to acquire a token. Attempted credentials: ClientSecretCredential authentication failed. POST https://" + entraHost + "/" + entraTenant + "/oauth2/v2.0/token RESPONSE 401: 401 Unauthorized {",
			`"AADSTS7000215: Invalid client secret provided." }`}},
		{name: "exchange refuses", secret: entraSecret, exchangeFail: true, want: []string{
			"token exchange at https://" + host + "/oauth2/exchange: 401 Unauthorized: ", `"code":"UNAUTHORIZED"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entraEnv(t, tc.secret)
			f := &fakeACR{host: host, refreshToken: refreshJWT(time.Now().Add(3 * time.Hour)), exchangeFail: tc.exchangeFail}
			reg, digests, sent := demandingBeside(t, f.serve, host, "Basic never", host+"/acme/denied:1", "quay.io/other/fine:1")
			t.Cleanup(resolver.SetACRTransport(reg.Transport()))
			refs := []string{host + "/acme/denied:1", "quay.io/other/fine:1"}
			res := resolver.New(resolver.WithTransport(reg.Transport())).Resolve(context.Background(), refs)

			if r := res[refs[1]]; r.Err != nil || r.Digest != digests[refs[1]] {
				t.Errorf("%s: got %+v, want %s", refs[1], r, digests[refs[1]])
			}
			err := res[refs[0]].Err
			if err == nil {
				t.Fatalf("%s: no error, digest %s", refs[0], res[refs[0]].Digest)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q spans lines", msg)
			}
			for _, want := range append([]string{"read credentials for registry " + host + ": Azure Container Registry: "}, tc.want...) {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not say %q", msg, want)
				}
			}
			for _, secret := range []string{tc.secret, entraToken} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q holds %q", msg, secret)
				}
			}
			if got := sent()[host]; len(got) != 0 {
				t.Errorf("%s was asked %d times without credentials", host, len(got))
			}
		})
	}
}

// TestACRHosts: which host names the ACR keychain takes for Azure Container Registry (then it
// answers with credentials to be fetched), and which it leaves alone (anonymous, nothing fetched).
// Resolve itself contacts nothing, so this asks the default keychain.
func TestACRHosts(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	for host, want := range map[string]bool{
		"myregistry.azurecr.io":              true,
		"myregistry.azurecr.cn":              true,
		"myregistry.azurecr.us":              true,
		"azurecr.io":                         false,
		"myregistry.westeurope.azurecr.io":   false,
		"myregistry.azurecr.io.evil.example": false,
		"myregistry.azurecr.io:5000":         false,
		"myregistryazurecr.io":               false,
		"mcr.microsoft.com":                  false,
	} {
		reg, err := name.NewRegistry(host)
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		a, err := resolver.DefaultKeychain.Resolve(reg)
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		if got := a != authn.Anonymous; got != want {
			t.Errorf("%s taken for ACR: %v, want %v", host, got, want)
		}
	}
}
