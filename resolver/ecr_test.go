package resolver_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/digester/digester/resolver"
)

const (
	awsKeyID  = "AKIAFAKEKEYID0123456"
	awsSecret = "fake/Secret+AccessKey0123456789abcdefghij"
)

// ecrCall is what the fake ECR API saw of one request.
type ecrCall struct {
	Target  string
	Key     string // the access key ID that signed it (SigV4)
	Scope   string // the SigV4 credential scope without its date: region/service/aws4_request
	Session string // X-Amz-Security-Token
}

// fakeECR starts an ECR API on loopback that answers GetAuthorizationToken (awsJson1_1) with
// base64(AWS:password), expiring in expiresIn, or, when fail is set, with that error type, and
// points the AWS SDK at it with static credentials in the environment (awsKeyID; no config file,
// no instance metadata). calls returns what it was asked.
func fakeECR(t *testing.T, password string, expiresIn time.Duration, fail string) (calls func() []ecrCall) {
	t.Helper()
	var mu sync.Mutex
	var seen []ecrCall
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := ecrCall{Target: r.Header.Get("X-Amz-Target"), Session: r.Header.Get("X-Amz-Security-Token")}
		// AWS4-HMAC-SHA256 Credential=KEYID/20260101/us-west-2/ecr/aws4_request, SignedHeaders=..., Signature=...
		if cred, ok := strings.CutPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential="); ok && strings.Contains(cred, ", Signature=") {
			cred, _, _ = strings.Cut(cred, ",")
			parts := strings.SplitN(cred, "/", 3)
			if len(parts) == 3 {
				c.Key, c.Scope = parts[0], parts[2]
			}
		}
		mu.Lock()
		seen = append(seen, c)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if fail != "" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"__type":%q,"message":"The security token included in the request is invalid."}`, fail)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"authorizationData": []map[string]any{{
			"authorizationToken": base64.StdEncoding.EncodeToString([]byte("AWS:" + password)),
			"expiresAt":          time.Now().Add(expiresIn).Unix(),
			"proxyEndpoint":      "https://123456789012.dkr.ecr.us-west-2.amazonaws.com",
		}}})
	}))
	t.Cleanup(srv.Close)
	resolver.ForgetECRTokens() // from earlier tests, or runs of -count
	none := t.TempDir() + "/none"
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": awsKeyID, "AWS_SECRET_ACCESS_KEY": awsSecret, "AWS_SESSION_TOKEN": "",
		"AWS_ENDPOINT_URL_ECR": srv.URL, "AWS_CONFIG_FILE": none, "AWS_SHARED_CREDENTIALS_FILE": none,
		"AWS_PROFILE": "", "AWS_REGION": "", "AWS_DEFAULT_REGION": "", "AWS_EC2_METADATA_DISABLED": "true",
		"DOCKER_CONFIG": t.TempDir(), "GITHUB_TOKEN": "",
	} {
		t.Setenv(k, v)
	}
	return func() []ecrCall {
		mu.Lock()
		defer mu.Unlock()
		return append([]ecrCall(nil), seen...)
	}
}

const getToken = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"

// TestECRCredentials: the default keychain gets an ECR registry's password from
// GetAuthorizationToken (a fake ECR API on loopback, named by AWS_ENDPOINT_URL_ECR), signed with the
// environment's AWS keys for the registry's region, and keeps it: a second run asks ECR nothing. A
// run against another registry makes no ECR call and sends it no credentials.
func TestECRCredentials(t *testing.T) {
	const host = "123456789012.dkr.ecr.us-west-2.amazonaws.com"
	const password = "ecr-password-0123456789abcdefghijklmnop"
	calls := fakeECR(t, password, 12*time.Hour, "")
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("AWS:"+password))
	reg, digests, sent := demanding(t, host, want, host+"/acme/app:1", "quay.io/other/app:1")

	resolve := func(ref string) {
		t.Helper()
		res := resolver.New(resolver.WithTransport(reg.Transport())).Resolve(context.Background(), []string{ref})
		if res[ref].Err != nil || res[ref].Digest != digests[ref] {
			t.Fatalf("%s: got %+v, want %s", ref, res[ref], digests[ref])
		}
	}
	resolve("quay.io/other/app:1")
	if got := calls(); len(got) != 0 {
		t.Errorf("a run against quay.io called ECR: %+v", got)
	}

	resolve(host + "/acme/app:1")
	resolve(host + "/acme/app:1") // a new resolver: the token is kept
	wantCalls := []ecrCall{{Target: getToken, Key: awsKeyID, Scope: "us-west-2/ecr/aws4_request"}}
	if diff := cmp.Diff(wantCalls, calls()); diff != "" {
		t.Errorf("ECR API calls (-want +got):\n%s", diff)
	}
	wantAuth := map[string][]string{"quay.io": {"", ""}, host: {"", want, "", want}}
	if diff := cmp.Diff(wantAuth, sent()); diff != "" {
		t.Errorf("Authorization sent, by host (-want +got):\n%s", diff)
	}
}

// TestECRCredentialSources: the AWS default credential chain is what signs GetAuthorizationToken,
// whichever source holds the credentials: a container credentials endpoint (ECS, EKS Pod
// Identity; a fake on loopback named by AWS_CONTAINER_CREDENTIALS_FULL_URI), a web identity
// token file (EKS IRSA; STS AssumeRoleWithWebIdentity, a fake named by AWS_ENDPOINT_URL_STS), or
// EC2 instance metadata (IMDSv2, a fake named by AWS_EC2_METADATA_SERVICE_ENDPOINT).
func TestECRCredentialSources(t *testing.T) {
	const sessionKey, sessionSecret, session = "ASIAFAKESESSIONKEY01", "fake/SessionSecret0123456789abcdefghijkl", "FakeSessionToken0123456789"
	expiry := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for _, tc := range []struct {
		name, host string
		setup      func(t *testing.T) (asked func() []string)
		wantAsked  []string // of the credential source
	}{
		{name: "container endpoint", host: "444444444444.dkr.ecr.us-east-2.amazonaws.com", wantAsked: []string{"GET /v1/credentials pod-identity-token"}, setup: func(t *testing.T) func() []string {
			var mu sync.Mutex
			var asked []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				asked = append(asked, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
				mu.Unlock()
				json.NewEncoder(w).Encode(map[string]string{"AccessKeyId": sessionKey, "SecretAccessKey": sessionSecret, "Token": session, "Expiration": expiry})
			}))
			t.Cleanup(srv.Close)
			t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", srv.URL+"/v1/credentials")
			t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "pod-identity-token")
			return func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(asked) }
		}},
		{name: "web identity", host: "555555555555.dkr.ecr.us-east-2.amazonaws.com", wantAsked: []string{
			"POST AssumeRoleWithWebIdentity arn:aws:iam::123456789012:role/digester projected-service-account-jwt"}, setup: func(t *testing.T) func() []string {
			var mu sync.Mutex
			var asked []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				r.ParseForm()
				mu.Lock()
				asked = append(asked, r.Method+" "+r.PostForm.Get("Action")+" "+r.PostForm.Get("RoleArn")+" "+r.PostForm.Get("WebIdentityToken"))
				mu.Unlock()
				w.Header().Set("Content-Type", "text/xml")
				fmt.Fprintf(w, `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult>`+
					`<Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey><SessionToken>%s</SessionToken><Expiration>%s</Expiration></Credentials>`+
					`<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/digester/s</Arn><AssumedRoleId>AROAFAKE:s</AssumedRoleId></AssumedRoleUser>`+
					`</AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>`,
					sessionKey, sessionSecret, session, expiry)
			}))
			t.Cleanup(srv.Close)
			file := filepath.Join(t.TempDir(), "token")
			if err := os.WriteFile(file, []byte("projected-service-account-jwt"), 0o600); err != nil {
				t.Fatal(err)
			}
			t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", file)
			t.Setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/digester")
			t.Setenv("AWS_ENDPOINT_URL_STS", srv.URL)
			return func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(asked) }
		}},
		{name: "instance metadata", host: "666666666666.dkr.ecr.us-east-2.amazonaws.com", wantAsked: []string{
			"PUT /latest/api/token", "GET /latest/meta-data/iam/security-credentials/ imds-session", "GET /latest/meta-data/iam/security-credentials/digester-node imds-session"}, setup: func(t *testing.T) func() []string {
			var mu sync.Mutex
			var asked []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				asked = append(asked, strings.TrimSpace(r.Method+" "+r.URL.Path+" "+r.Header.Get("X-Aws-Ec2-Metadata-Token")))
				mu.Unlock()
				switch r.URL.Path {
				case "/latest/api/token":
					w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "21600")
					w.Write([]byte("imds-session"))
				case "/latest/meta-data/iam/security-credentials/":
					w.Write([]byte("digester-node"))
				case "/latest/meta-data/iam/security-credentials/digester-node":
					json.NewEncoder(w).Encode(map[string]string{"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": sessionKey,
						"SecretAccessKey": sessionSecret, "Token": session, "Expiration": expiry, "LastUpdated": time.Now().UTC().Format(time.RFC3339)})
				default:
					http.NotFound(w, r)
				}
			}))
			t.Cleanup(srv.Close)
			t.Setenv("AWS_EC2_METADATA_DISABLED", "")
			t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", srv.URL)
			return func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(asked) }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := tc.host
			const password = "ecr-password-from-a-session-0123456789"
			calls := fakeECR(t, password, 12*time.Hour, "")
			t.Setenv("AWS_ACCESS_KEY_ID", "")
			t.Setenv("AWS_SECRET_ACCESS_KEY", "")
			asked := tc.setup(t)
			want := "Basic " + base64.StdEncoding.EncodeToString([]byte("AWS:"+password))
			reg, digests, _ := demanding(t, host, want, host+"/acme/session:1")
			ref := host + "/acme/session:1"
			res := resolver.New(resolver.WithTransport(reg.Transport())).Resolve(context.Background(), []string{ref})
			if res[ref].Err != nil || res[ref].Digest != digests[ref] {
				t.Fatalf("%s: got %+v, want %s", ref, res[ref], digests[ref])
			}
			wantCalls := []ecrCall{{Target: getToken, Key: sessionKey, Scope: "us-east-2/ecr/aws4_request", Session: session}}
			if diff := cmp.Diff(wantCalls, calls()); diff != "" {
				t.Errorf("ECR API calls (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantAsked, asked()); diff != "" {
				t.Errorf("credential source requests (-want +got):\n%s", diff)
			}
		})
	}
}

// TestECRConcurrentRuns: runs in one process that look up one ECR registry at once (the webhook's
// requests, pin's concurrent packages) share one GetAuthorizationToken call.
func TestECRConcurrentRuns(t *testing.T) {
	const host = "777777777777.dkr.ecr.sa-east-1.amazonaws.com"
	const password = "ecr-shared-password-0123456789abcdef"
	calls := fakeECR(t, password, 12*time.Hour, "")
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("AWS:"+password))
	reg, digests, _ := demanding(t, host, want, host+"/acme/shared:1")
	ref := host + "/acme/shared:1"
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			r := resolver.New(resolver.WithTransport(reg.Transport())).Resolve(context.Background(), []string{ref})[ref]
			if r.Err != nil || r.Digest != digests[ref] {
				errs[i] = fmt.Errorf("run %d: got %+v, want %s", i, r, digests[ref])
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := calls(); len(got) != 1 {
		t.Errorf("8 concurrent runs made %d ECR calls, want 1: %+v", len(got), got)
	}
}

// TestECRTokenExpiring: a token that expires within minutes is not kept; the next run asks again.
func TestECRTokenExpiring(t *testing.T) {
	const host = "210987654321.dkr.ecr.eu-central-1.amazonaws.com"
	const password = "ecr-short-lived-password-0123456789"
	calls := fakeECR(t, password, time.Minute, "")
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("AWS:"+password))
	reg, digests, _ := demanding(t, host, want, host+"/acme/short:1")
	for range 2 {
		ref := host + "/acme/short:1"
		res := resolver.New(resolver.WithTransport(reg.Transport())).Resolve(context.Background(), []string{ref})
		if res[ref].Err != nil || res[ref].Digest != digests[ref] {
			t.Fatalf("%s: got %+v, want %s", ref, res[ref], digests[ref])
		}
	}
	c := ecrCall{Target: getToken, Key: awsKeyID, Scope: "eu-central-1/ecr/aws4_request"}
	if diff := cmp.Diff([]ecrCall{c, c}, calls()); diff != "" {
		t.Errorf("ECR API calls (-want +got):\n%s", diff)
	}
}

// TestECRCredentialsFail: when ECR refuses the AWS credentials, or answers with a token that is not
// user:password, the image on that registry fails with an error that names the registry and the
// reason, and holds no key; an image on another registry in the same run is still resolved.
func TestECRCredentialsFail(t *testing.T) {
	const host = "333333333333.dkr.ecr.ap-south-1.amazonaws.com"
	for _, tc := range []struct {
		name, password, fail string
		want                 []string
	}{
		{name: "refused", fail: "UnrecognizedClientException", want: []string{
			"operation error ECR: GetAuthorizationToken", "UnrecognizedClientException", "The security token included in the request is invalid"}},
		{name: "no password in the token", want: []string{"GetAuthorizationToken returned a token that is not base64 of user:password"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fakeECR(t, tc.password, 12*time.Hour, tc.fail)
			reg, digests, sent := demanding(t, host, "Basic never", host+"/acme/denied:1", "quay.io/other/fine:1")
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
			for _, want := range append([]string{"read credentials for registry " + host + ": Amazon ECR, region ap-south-1: "}, tc.want...) {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not say %q", msg, want)
				}
			}
			if strings.Contains(msg, awsSecret) || strings.Contains(msg, "Signature=") {
				t.Errorf("error %q holds the AWS secret or a signature", msg)
			}
			if got := sent()[host]; len(got) != 0 {
				t.Errorf("%s was asked %d times without credentials", host, len(got))
			}
		})
	}
}

// TestECRFIPS: a -fips host name asks ECR's FIPS endpoint. That cannot be faked (the SDK refuses
// a custom endpoint together with FIPS), and the refusal is what shows FIPS was asked for: the
// same registry without -fips reaches the fake in TestECRCredentials.
func TestECRFIPS(t *testing.T) {
	const host = "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com"
	calls := fakeECR(t, "unused-password-0123456789", 12*time.Hour, "")
	reg, _, _ := demanding(t, host, "Basic never", host+"/acme/fips:1")
	ref := host + "/acme/fips:1"
	err := resolver.New(resolver.WithTransport(reg.Transport())).Resolve(context.Background(), []string{ref})[ref].Err
	want := "read credentials for registry " + host + ": Amazon ECR, region us-gov-west-1: "
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "FIPS and custom endpoint are not supported") {
		t.Errorf("%s: got error %v, want %q and the SDK's refusal of FIPS with a custom endpoint", ref, err, want)
	}
	if got := calls(); len(got) != 0 {
		t.Errorf("the fake (non-FIPS) ECR API was called: %+v", got)
	}
}

// TestECRHosts: which host names the ECR keychain takes for Amazon ECR (then it answers with
// credentials to be fetched), and which it leaves alone (anonymous, nothing fetched).
func TestECRHosts(t *testing.T) {
	k := resolver.NewECRKeychain()
	for host, want := range map[string]bool{
		"123456789012.dkr.ecr.us-east-1.amazonaws.com":          true,
		"123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com": true,
		"123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn":      true,
		"123456789012.dkr-ecr.us-east-1.on.aws":                 true,
		"123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov":         true,
		"public.ecr.aws": false,
		"12345678901.dkr.ecr.us-east-1.amazonaws.com":               false,
		"123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example": false,
		"evil.example/123456789012.dkr.ecr.us-east-1.amazonaws.com": false,
		"123456789012.dkr.ecr.us-east-1.amazonaws.com:5000":         false,
		"quay.io": false,
	} {
		reg, err := name.NewRegistry(host, name.WeakValidation)
		if err != nil {
			// not a registry name at all: nothing to resolve
			if want {
				t.Fatalf("%s: %v", host, err)
			}
			continue
		}
		a, err := k.Resolve(reg)
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		if got := a != authn.Anonymous; got != want {
			t.Errorf("%s taken for ECR: %v, want %v", host, got, want)
		}
	}
}
