package imds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// IdentityDocument is dynamic/instance-identity/document.
type IdentityDocument struct {
	AccountID        string    `json:"accountId"`
	Architecture     string    `json:"architecture"`
	AvailabilityZone string    `json:"availabilityZone"`
	ImageID          string    `json:"imageId"`
	InstanceID       string    `json:"instanceId"`
	InstanceType     string    `json:"instanceType"`
	KernelID         string    `json:"kernelId"`
	RamdiskID        string    `json:"ramdiskId"`
	PendingTime      time.Time `json:"pendingTime"`
	PrivateIP        string    `json:"privateIp"`
	Region           string    `json:"region"`
	Version          string    `json:"version"`
}

// IdentityDocument reads and decodes the instance identity document.
func (c *Client) IdentityDocument(ctx context.Context) (*IdentityDocument, error) {
	b, err := c.Get(ctx, "dynamic/instance-identity/document")
	if err != nil {
		return nil, err
	}
	var d IdentityDocument
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("instance identity document: %w", err)
	}
	if d.InstanceID == "" {
		return nil, fmt.Errorf("instance identity document has no instanceId")
	}
	return &d, nil
}

// PublicKey is one entry of meta-data/public-keys/.
type PublicKey struct {
	Index int
	Name  string
	// OpenSSH holds the key lines as served (one or more authorized_keys lines).
	OpenSSH string
}

// PublicKeys reads every public key. No keys (404) is an empty list.
func (c *Client) PublicKeys(ctx context.Context) ([]PublicKey, error) {
	lines, err := c.List(ctx, "meta-data/public-keys/")
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	keys := make([]PublicKey, len(lines))
	for i, l := range lines {
		idx, name, ok := strings.Cut(l, "=")
		n, err := strconv.Atoi(idx)
		if !ok || err != nil || n < 0 {
			return nil, fmt.Errorf("listing meta-data/public-keys/: malformed line %q (want N=name)", truncate(l, 60))
		}
		keys[i] = PublicKey{Index: n, Name: name}
	}
	err = c.each(ctx, len(keys), func(i int) error {
		b, err := c.Get(ctx, fmt.Sprintf("meta-data/public-keys/%d/openssh-key", keys[i].Index))
		keys[i].OpenSSH = string(b)
		return err
	})
	if err != nil {
		return nil, err
	}
	return keys, nil
}

// UserData returns the raw user-data; none (404) is nil without error.
func (c *Client) UserData(ctx context.Context) ([]byte, error) {
	b, err := c.Get(ctx, "user-data")
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return b, err
}

// Interface is one network interface under network/interfaces/macs/.
// Missing optional keys are left empty; DeviceNumber is -1 when absent.
type Interface struct {
	MAC             string
	DeviceNumber    int
	NetworkCard     int
	InterfaceID     string
	LocalIPv4s      []string
	SubnetIPv4CIDR  string
	IPv6s           []string
	SubnetIPv6CIDRs []string
	IPv4Prefixes    []string
	IPv6Prefixes    []string
}

// Interfaces reads every interface, concurrently.
func (c *Client) Interfaces(ctx context.Context) ([]Interface, error) {
	macs, err := c.List(ctx, "meta-data/network/interfaces/macs/")
	if err != nil {
		return nil, err
	}
	out := make([]Interface, len(macs))
	err = c.each(ctx, len(macs), func(i int) error {
		mac := strings.TrimSuffix(macs[i], "/")
		it := Interface{MAC: mac, DeviceNumber: -1}
		base := "meta-data/network/interfaces/macs/" + mac + "/"
		get := func(key string) ([]string, error) {
			b, err := c.Get(ctx, base+key)
			if errors.Is(err, ErrNotFound) {
				return nil, nil
			}
			return strings.Fields(string(b)), err
		}
		num := func(key string, dst *int) error {
			v, err := get(key)
			if err != nil || len(v) == 0 {
				return err
			}
			n, err := strconv.Atoi(v[0])
			if err != nil {
				return fmt.Errorf("%s%s: %q is not a number", base, key, v[0])
			}
			*dst = n
			return nil
		}
		if err := num("device-number", &it.DeviceNumber); err != nil {
			return err
		}
		if err := num("network-card", &it.NetworkCard); err != nil {
			return err
		}
		for key, dst := range map[string]*[]string{
			"local-ipv4s": &it.LocalIPv4s, "ipv6s": &it.IPv6s, "subnet-ipv6-cidr-blocks": &it.SubnetIPv6CIDRs,
			"ipv4-prefix": &it.IPv4Prefixes, "ipv6-prefix": &it.IPv6Prefixes,
		} {
			v, err := get(key)
			if err != nil {
				return err
			}
			*dst = v
		}
		for key, dst := range map[string]*string{"subnet-ipv4-cidr-block": &it.SubnetIPv4CIDR, "interface-id": &it.InterfaceID} {
			v, err := get(key)
			if err != nil {
				return err
			}
			if len(v) > 0 {
				*dst = v[0]
			}
		}
		out[i] = it
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(a, b int) bool { return out[a].DeviceNumber < out[b].DeviceNumber })
	return out, nil
}

// Credentials are an instance role's temporary credentials.
type Credentials struct {
	Role            string
	Code            string    `json:"Code"`
	AccessKeyID     string    `json:"AccessKeyId"`
	SecretAccessKey string    `json:"SecretAccessKey"`
	Token           string    `json:"Token"`
	Expiration      time.Time `json:"Expiration"`
}

// ErrNoRole is returned when the instance has no IAM role attached.
var ErrNoRole = fmt.Errorf("no instance role attached: %w", ErrNotFound)

// Getter reads one value by path; every Reader is one.
type Getter interface {
	Get(ctx context.Context, path string) ([]byte, error)
}

// RoleCredentials reads the credentials of the instance's role.
func (c *Client) RoleCredentials(ctx context.Context) (*Credentials, error) {
	return ReadRoleCredentials(ctx, c)
}

// ReadRoleCredentials reads, through g, the credentials of the instance's
// role (the first listed): ErrNoRole without one, an error for an answer
// whose Code is not "Success" or that lacks a key. Errors name the role
// and never quote the body: it holds the secret key.
func ReadRoleCredentials(ctx context.Context, g Getter) (*Credentials, error) {
	const dir = "meta-data/iam/security-credentials/"
	list, err := g.Get(ctx, dir)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNoRole
	}
	if err != nil {
		return nil, fmt.Errorf("list instance roles: %w", err)
	}
	role := strings.TrimSuffix(strings.TrimSpace(strings.SplitN(string(list), "\n", 2)[0]), "/")
	if role == "" {
		return nil, ErrNoRole
	}
	raw, err := g.Get(ctx, dir+role)
	if err != nil {
		return nil, fmt.Errorf("read credentials of role %s: %w", role, err)
	}
	cr := Credentials{Role: role}
	if err := json.Unmarshal(raw, &cr); err != nil {
		return nil, fmt.Errorf("credentials of role %s are not valid JSON", role)
	}
	if cr.Code != "" && cr.Code != "Success" {
		return nil, fmt.Errorf("credentials of role %s: metadata says %q", role, cr.Code)
	}
	if cr.AccessKeyID == "" || cr.SecretAccessKey == "" {
		return nil, fmt.Errorf("credentials of role %s are incomplete", role)
	}
	return &cr, nil
}

// concurrency matches the transport's connection cap.
const concurrency = 4

// each runs fn(0..n-1) with bounded concurrency and returns the first error.
func (c *Client) each(ctx context.Context, n int, fn func(i int) error) error {
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := fn(i); err != nil {
				once.Do(func() { first = err })
			}
		}()
	}
	wg.Wait()
	return first
}
