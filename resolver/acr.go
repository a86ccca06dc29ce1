package resolver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/google/go-containerregistry/pkg/authn"
)

// acrUser is the user name that goes with an ACR refresh token.
const acrUser = "00000000-0000-0000-0000-000000000000"

// acrCloud is what an ACR domain needs of its Azure cloud: the Microsoft Entra authority (zero for
// the public cloud, so that AZURE_AUTHORITY_HOST may name another) and the Resource Manager scope
// that ACR accepts tokens for.
type acrCloud struct {
	cloud cloud.Configuration
	scope string
}

// acrClouds are the ACR domains, by the suffix of the registry's host name.
var acrClouds = map[string]acrCloud{
	".azurecr.io": {scope: "https://management.azure.com/.default"},
	".azurecr.cn": {cloud: cloud.AzureChina, scope: "https://management.chinacloudapi.cn/.default"},
	".azurecr.us": {cloud: cloud.AzureGovernment, scope: "https://management.usgovcloudapi.net/.default"},
}

// acrKeychain gives each Azure Container Registry the refresh token that the registry's
// /oauth2/exchange returns for a Microsoft Entra access token of azidentity's
// DefaultAzureCredential. Other registries get nothing, and nothing is contacted for them.
type acrKeychain struct {
	tokens    tokenCache
	mu        sync.Mutex
	creds     map[string]azcore.TokenCredential // by acrClouds key
	transport http.RoundTripper                 // nil: http.DefaultTransport; tests set it
}

func (k *acrKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	host := r.RegistryStr()
	suffix := ""
	for s := range acrClouds {
		if len(host) > len(s) && strings.HasSuffix(host, s) && !strings.Contains(host[:len(host)-len(s)], ".") {
			suffix = s
		}
	}
	if suffix == "" {
		return authn.Anonymous, nil
	}
	return k.tokens.lazy(host, func(ctx context.Context) (string, string, time.Time, error) {
		password, expires, err := k.refreshToken(ctx, host, suffix)
		if err != nil {
			return "", "", time.Time{}, fmt.Errorf("Azure Container Registry: %w", err)
		}
		return acrUser, password, expires, nil
	}), nil
}

// credential returns the DefaultAzureCredential for the cloud of suffix, made on first use, and
// the transport for the token exchange.
func (k *acrKeychain) credential(suffix string) (azcore.TokenCredential, http.RoundTripper, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	rt := k.transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	if c := k.creds[suffix]; c != nil {
		return c, rt, nil
	}
	opts := &azidentity.DefaultAzureCredentialOptions{}
	opts.Cloud = acrClouds[suffix].cloud
	if k.transport != nil {
		opts.Transport = &http.Client{Transport: k.transport}
	}
	c, err := azidentity.NewDefaultAzureCredential(opts)
	if err != nil {
		return nil, nil, err
	}
	if k.creds == nil {
		k.creds = map[string]azcore.TokenCredential{}
	}
	k.creds[suffix] = c
	return c, rt, nil
}

// refreshToken exchanges a Microsoft Entra access token for the registry's refresh token, and
// says when that expires (zero when it does not say).
func (k *acrKeychain) refreshToken(ctx context.Context, host, suffix string) (string, time.Time, error) {
	cred, rt, err := k.credential(suffix)
	if err != nil {
		return "", time.Time{}, err
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{acrClouds[suffix].scope}})
	if err != nil {
		return "", time.Time{}, errors.New(oneLine(err.Error()))
	}
	form := url.Values{"grant_type": {"access_token"}, "service": {host}, "access_token": {tok.Token}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+host+"/oauth2/exchange", strings.NewReader(form.Encode()))
	if err != nil {
		return "", time.Time{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token exchange: %w", errors.Unwrap(err)) // the *url.Error names the URL only
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	var out struct {
		RefreshToken string `json:"refresh_token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &out) != nil || out.RefreshToken == "" {
		detail := strings.ReplaceAll(strings.TrimSpace(string(body)), tok.Token, "[redacted]")
		return "", time.Time{}, fmt.Errorf("token exchange at https://%s/oauth2/exchange: %s: %s", host, resp.Status, shorten(detail, 200))
	}
	return out.RefreshToken, jwtExpiry(out.RefreshToken), nil
}

// jwtExpiry reads the exp claim of a JWT, unverified: it only says how long to keep the token.
// Zero when there is none.
func jwtExpiry(token string) time.Time {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == 0 {
		return time.Time{}
	}
	return time.Unix(claims.Exp, 0)
}

// oneLine puts azidentity's error, which spreads each credential's attempt over lines framed by
// dashes, on one line.
func oneLine(s string) string {
	var words []string
	for _, w := range strings.Fields(s) {
		if strings.Trim(w, "-") != "" {
			words = append(words, w)
		}
	}
	return strings.Join(words, " ")
}
