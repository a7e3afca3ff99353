package imds

import (
	"context"
	"errors"
	"testing"
	"time"
)

// mapReader answers from a map; paths not in it are 404.
type mapReader map[string]string

func (m mapReader) Get(_ context.Context, p string) ([]byte, error) {
	if v, ok := m[p]; ok {
		return []byte(v), nil
	}
	return nil, ErrNotFound
}

func (m mapReader) List(_ context.Context, p string) ([]string, error) {
	if v, ok := m[p]; ok {
		return []string{v}, nil
	}
	return nil, ErrNotFound
}

func TestASnapshotKeepsWhatWasReadButNeverUserDataOrCredentials(t *testing.T) {
	ctx := context.Background()
	src := mapReader{
		"meta-data/instance-id":                   "i-1",
		"meta-data/public-keys/":                  "0=key",
		"user-data":                               "#cloud-config\npassword: hunter2\n",
		"meta-data/iam/security-credentials/":     "role",
		"meta-data/iam/security-credentials/role": `{"SecretAccessKey":"s3cret","Token":"tok"}`,
		"meta-data/identity-credentials/ec2/security-credentials/ec2-instance": `{"Token":"tok2"}`,
	}
	m := NewMemo(src)
	for _, p := range []string{"meta-data/instance-id", "user-data", "meta-data/iam/security-credentials/role",
		"meta-data/identity-credentials/ec2/security-credentials/ec2-instance", "meta-data/kernel-id"} {
		m.Get(ctx, p)
	}
	m.List(ctx, "meta-data/public-keys/")
	m.List(ctx, "meta-data/iam/security-credentials/")
	s := m.Snapshot(time.Unix(0, 0))

	if v, err := s.Get(ctx, "meta-data/instance-id"); err != nil || string(v) != "i-1" {
		t.Errorf("instance-id: %q, %v", v, err)
	}
	if l, err := s.List(ctx, "meta-data/public-keys/"); err != nil || len(l) != 1 {
		t.Errorf("public-keys listing: %q, %v", l, err)
	}
	if l, err := s.List(ctx, "meta-data/iam/security-credentials/"); err != nil || len(l) != 1 {
		t.Errorf("role listing (not secret): %q, %v", l, err)
	}
	if _, err := s.Get(ctx, "meta-data/kernel-id"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a 404 seen is kept as a 404: %v", err)
	}
	for _, p := range []string{"user-data", "meta-data/iam/security-credentials/role",
		"meta-data/identity-credentials/ec2/security-credentials/ec2-instance", "meta-data/never-read"} {
		_, err := s.Get(ctx, p)
		if !errors.Is(err, ErrNotKept) || errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotKept and not ErrNotFound", p, err)
		}
	}
}
