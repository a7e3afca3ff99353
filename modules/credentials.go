package modules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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

const credsPath = "meta-data/iam/security-credentials/"

func (p roleProvider) Retrieve(ctx context.Context) (Credentials, error) {
	list, err := p.md.Get(ctx, credsPath)
	if errors.Is(err, imds.ErrNotFound) {
		return Credentials{}, errors.New("the instance has no IAM role: attach one that may read the bundle bucket")
	}
	if err != nil {
		return Credentials{}, fmt.Errorf("list instance roles: %w", err)
	}
	role := strings.TrimSuffix(strings.TrimSpace(strings.SplitN(string(list), "\n", 2)[0]), "/")
	if role == "" {
		return Credentials{}, errors.New("the instance has no IAM role: attach one that may read the bundle bucket")
	}
	raw, err := p.md.Get(ctx, credsPath+role)
	if err != nil {
		return Credentials{}, fmt.Errorf("read credentials of role %s: %w", role, err)
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
		return Credentials{}, fmt.Errorf("credentials of role %s are not valid JSON", role)
	}
	if c.Code != "" && c.Code != "Success" {
		return Credentials{}, fmt.Errorf("credentials of role %s: metadata says %q", role, c.Code)
	}
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return Credentials{}, fmt.Errorf("credentials of role %s are incomplete", role)
	}
	return Credentials{
		AccessKeyID:     c.AccessKeyID,
		SecretAccessKey: c.SecretAccessKey,
		SessionToken:    c.Token,
		Expires:         c.Expiration,
	}, nil
}
