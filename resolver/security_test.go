package resolver_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/digester/digester/internal/faultregistry"
	"github.com/digester/digester/resolver"
)

// Credentials used by the security tests. The password is long enough that a piece of it is
// recognisable in output.
const (
	robotUser  = "robot"
	robotPass  = "Pa55-w0rd-of-the-robot-account"
	robotToken = "tok-3f9a8b7c6d5e4f3a2b1c0d9e8f7a"
)

// secrets are the strings that must never appear in a result: the password, the basic
// Authorization value, the bearer token, and the start of the password, in case it is cut.
var secrets = []string{
	robotPass,
	base64.StdEncoding.EncodeToString([]byte(robotUser + ":" + robotPass)),
	robotToken,
	robotPass[:8],
}

// TestCredentialsNeverInResults: whatever a registry or token service echoes back, the result of a
// lookup never carries a credential, on success or on failure.
func TestCredentialsNeverInResults(t *testing.T) {
	headNotAllowed := faultregistry.Always(faultregistry.Manifest(http.MethodHead), faultregistry.Status(http.StatusMethodNotAllowed))
	getEchoes := func(prefix string) middleware {
		return faultregistry.Always(faultregistry.Manifest(http.MethodGet), faultregistry.Echo(http.StatusForbidden, prefix))
	}
	// The password starts 192 bytes into the registry's message, so a cut at 200 bytes would
	// keep its first 8 characters.
	pad := strings.Repeat(".", 192-len(robotUser+":"))
	for _, tc := range []struct {
		name string
		mws  []middleware
		want string // "" for a pin; %s is the registry host
	}{
		{"basic: success", []middleware{faultregistry.BasicAuth(robotUser, robotPass)}, ""},
		{"bearer: success", []middleware{faultregistry.TokenAuth(robotUser, robotPass, robotToken, nil)}, ""},
		{"basic: wrong password", []middleware{faultregistry.BasicAuth(robotUser, "another-password")},
			"unauthorized: registry %s rejected the credentials digester found for it"},
		{"basic: 403 echoing the credentials", []middleware{faultregistry.BasicAuth(robotUser, robotPass), headNotAllowed, getEchoes("you sent ")},
			"forbidden: registry %s denies these credentials access for repository app, tag \"v1\": you sent robot:[redacted] from Basic [redacted]"},
		{"basic: 403 echoing the credentials at the length limit", []middleware{faultregistry.BasicAuth(robotUser, robotPass), headNotAllowed, getEchoes(pad)},
			"forbidden: registry %s denies these credentials access"},
		{"bearer: 403 echoing the token", []middleware{faultregistry.TokenAuth(robotUser, robotPass, robotToken, nil), headNotAllowed, getEchoes("you sent ")},
			"forbidden: registry %s denies these credentials access for repository app, tag \"v1\": you sent Bearer [redacted]"},
		{"bearer: token service rejects the password", []middleware{faultregistry.TokenAuth(robotUser, "another-password", robotToken, nil)},
			"unauthorized: registry %s rejected the credentials digester found for it"},
		{"bearer: token service fails echoing the credentials", []middleware{faultregistry.TokenAuth(robotUser, robotPass, robotToken, faultregistry.Echo(http.StatusInternalServerError, "down, you sent "))},
			"registry %s answered HTTP 500 Internal Server Error: down, you sent robot:[redacted] from Basic [redacted]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg, ref, digest := faulty(t, tc.mws...)
			kc := staticKeychain{reg.Host: {Username: robotUser, Password: robotPass}}
			res := resolveOne(t, context.Background(), fast(resolver.WithKeychain(kc)), ref)
			if tc.want == "" {
				wantPinned(t, res, digest)
			} else {
				wantError(t, res, fmt.Sprintf(tc.want, reg.Host))
			}
			got := fmt.Sprintf("%v %#v", res.Err, res)
			for _, s := range secrets {
				if strings.Contains(got, s) {
					t.Errorf("the result carries the secret %q: %s", s, got)
				}
			}
		})
	}
}

// TestAnonymousIsSaidInPlainWords: a registry that wants credentials digester does not have says so.
func TestAnonymousIsSaidInPlainWords(t *testing.T) {
	reg, ref, _ := faulty(t, faultregistry.BasicAuth(robotUser, robotPass))
	res := resolveOne(t, context.Background(), fast(resolver.WithKeychain(authn.NewMultiKeychain())), ref)
	wantError(t, res, fmt.Sprintf(`unauthorized: registry %s wants credentials for repository app, tag "v1" and digester has none for it`, reg.Host))
}
