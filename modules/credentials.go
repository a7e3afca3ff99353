package modules

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/flint-dev/flint/imds"
)

// Credentials are AWS access keys: the instance role's, which sign s3://
// bundle requests.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// Expires is when they stop working; zero if they do not.
	Expires time.Time
}

// CredentialsProvider hands out credentials.
type CredentialsProvider interface {
	Retrieve(ctx context.Context) (Credentials, error)
}

// CredentialsFunc is a CredentialsProvider made of a function.
type CredentialsFunc func(ctx context.Context) (Credentials, error)

// Retrieve calls f.
func (f CredentialsFunc) Retrieve(ctx context.Context) (Credentials, error) { return f(ctx) }

// RoleCredentials returns the instance role's credentials from metadata
// (meta-data/iam/security-credentials/<role>), cached until five minutes
// before they expire. It is what signs s3:// bundles in private buckets.
func RoleCredentials(md Metadata) CredentialsProvider {
	return &credentialsCache{p: roleProvider{md}, window: 5 * time.Minute}
}

// credentialsCache keeps what its provider returned until window before
// it expires; concurrent callers share one retrieval.
type credentialsCache struct {
	p      CredentialsProvider
	window time.Duration

	mu    sync.Mutex
	creds Credentials
	ok    bool
}

func (c *credentialsCache) Retrieve(ctx context.Context) (Credentials, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ok && (c.creds.Expires.IsZero() || time.Until(c.creds.Expires) > c.window) {
		return c.creds, nil
	}
	creds, err := c.p.Retrieve(ctx)
	if err != nil {
		return Credentials{}, err
	}
	c.creds, c.ok = creds, true
	return creds, nil
}

type roleProvider struct{ md Metadata }

func (p roleProvider) Retrieve(ctx context.Context) (Credentials, error) {
	cr, err := imds.ReadRoleCredentials(ctx, p.md)
	if errors.Is(err, imds.ErrNoRole) {
		return Credentials{}, errors.New("the instance has no IAM role: attach one that may read the bundle bucket")
	}
	if err != nil {
		return Credentials{}, err
	}
	return Credentials{
		AccessKeyID:     cr.AccessKeyID,
		SecretAccessKey: cr.SecretAccessKey,
		SessionToken:    cr.Token,
		Expires:         cr.Expiration,
	}, nil
}
