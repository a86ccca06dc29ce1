package resolver

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/authn"
)

// ecrHost matches the host names of Amazon ECR private registries, as amazon-ecr-credential-helper
// (ecr-login v0.12.0) does: account, optional FIPS, region, then the partition's domain
// (amazonaws.com, amazonaws.com.cn, the dual-stack on.aws and the isolated regions' domains).
var ecrHost = regexp.MustCompile(`^(\d{12})\.dkr[\.\-]ecr(-fips)?\.([a-zA-Z0-9][a-zA-Z0-9-_]*)\.(amazonaws\.(?:com(?:\.cn)?|eu)|on\.(?:aws|amazonwebservices\.com\.cn)|sc2s\.sgov\.gov|c2s\.ic\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)$`)

// ecrKeychain gives each Amazon ECR registry the user name and password of an authorization token
// that ecr:GetAuthorizationToken returns, in the registry's own region, to the AWS default
// credential chain's identity. Other registries get nothing, and nothing is contacted for them.
type ecrKeychain struct{ tokens tokenCache }

func (k *ecrKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	host := r.RegistryStr()
	m := ecrHost.FindStringSubmatch(host)
	if m == nil {
		return authn.Anonymous, nil
	}
	return k.tokens.lazy(host, func(ctx context.Context) (string, string, time.Time, error) {
		user, password, expires, err := ecrToken(ctx, m[3], m[2] != "")
		if err != nil {
			return "", "", time.Time{}, fmt.Errorf("Amazon ECR, region %s: %w", m[3], err)
		}
		return user, password, expires, nil
	}), nil
}

// ecrToken asks ECR in region (its FIPS endpoint if fips) for an authorization token, with the
// AWS default credential chain: the environment, the shared config and credentials files and
// profile, web identity (EKS IRSA), SSO, then the container or EC2 instance metadata.
func ecrToken(ctx context.Context, region string, fips bool) (user, password string, expires time.Time, err error) {
	opts := []func(*config.LoadOptions) error{config.WithRegion(region)}
	if fips {
		opts = append(opts, config.WithUseFIPSEndpoint(aws.FIPSEndpointStateEnabled))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	out, err := ecr.NewFromConfig(cfg).GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		return "", "", time.Time{}, err
	}
	if len(out.AuthorizationData) == 0 || out.AuthorizationData[0].AuthorizationToken == nil {
		return "", "", time.Time{}, errors.New("GetAuthorizationToken returned no token")
	}
	d := out.AuthorizationData[0]
	raw, err := base64.StdEncoding.DecodeString(*d.AuthorizationToken)
	user, password, ok := strings.Cut(string(raw), ":")
	if err != nil || !ok || user == "" || password == "" {
		return "", "", time.Time{}, errors.New("GetAuthorizationToken returned a token that is not base64 of user:password")
	}
	if d.ExpiresAt != nil {
		expires = *d.ExpiresAt
	}
	return user, password, expires, nil
}
