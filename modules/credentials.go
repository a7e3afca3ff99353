package modules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/flint-dev/flint/imds"
)

// RoleCredentials returns the instance role's credentials from metadata
// (meta-data/iam/security-credentials/<role>), cached until shortly before
// they expire. It is what signs s3:// bundles in private buckets.
func RoleCredentials(md Metadata) aws.CredentialsProvider {
	return aws.NewCredentialsCache(roleProvider{md}, func(o *aws.CredentialsCacheOptions) {
		o.ExpiryWindow = 5 * time.Minute
	})
}

type roleProvider struct{ md Metadata }

const credsPath = "meta-data/iam/security-credentials/"

func (p roleProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	list, err := p.md.Get(ctx, credsPath)
	if errors.Is(err, imds.ErrNotFound) {
		return aws.Credentials{}, errors.New("the instance has no IAM role: attach one that may read the bundle bucket")
	}
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("list instance roles: %w", err)
	}
	role := strings.TrimSuffix(strings.TrimSpace(strings.SplitN(string(list), "\n", 2)[0]), "/")
	if role == "" {
		return aws.Credentials{}, errors.New("the instance has no IAM role: attach one that may read the bundle bucket")
	}
	raw, err := p.md.Get(ctx, credsPath+role)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("read credentials of role %s: %w", role, err)
	}
	var c struct {
		Code            string
		AccessKeyID     string `json:"AccessKeyId"`
		SecretAccessKey string
		Token           string
		Expiration      time.Time
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		// Never echo the document: it holds the secret key.
		return aws.Credentials{}, fmt.Errorf("credentials of role %s are not valid JSON", role)
	}
	if c.Code != "" && c.Code != "Success" {
		return aws.Credentials{}, fmt.Errorf("credentials of role %s: metadata says %q", role, c.Code)
	}
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return aws.Credentials{}, fmt.Errorf("credentials of role %s are incomplete", role)
	}
	return aws.Credentials{
		AccessKeyID:     c.AccessKeyID,
		SecretAccessKey: c.SecretAccessKey,
		SessionToken:    c.Token,
		Source:          "flint instance role " + role,
		CanExpire:       !c.Expiration.IsZero(),
		Expires:         c.Expiration,
	}, nil
}
