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

func TestASnapshotThatReadLessKeepsTheRestOfTheOlderOne(t *testing.T) {
	older := &Snapshot{
		Values:   map[string]string{"meta-data/instance-id": "i-1", "meta-data/local-hostname": "old", "meta-data/mac": "m"},
		Lists:    map[string][]string{"meta-data/public-keys/": {"0=k"}},
		NotFound: []string{"meta-data/kernel-id", "meta-data/ramdisk-id"},
	}
	s := &Snapshot{
		Values:   map[string]string{"meta-data/instance-id": "i-1", "meta-data/local-hostname": "new", "meta-data/ramdisk-id": "r"},
		Lists:    map[string][]string{},
		NotFound: []string{"meta-data/mac"},
	}
	s.Fill(older)
	ctx := context.Background()
	for p, want := range map[string]string{"meta-data/local-hostname": "new", "meta-data/ramdisk-id": "r"} {
		if v, err := s.Get(ctx, p); err != nil || string(v) != want {
			t.Errorf("%s: %q %v, want %q (the newer read wins)", p, v, err, want)
		}
	}
	if _, err := s.Get(ctx, "meta-data/mac"); !errors.Is(err, ErrNotFound) {
		t.Errorf("mac: %v, want the newer 404", err)
	}
	if _, err := s.Get(ctx, "meta-data/kernel-id"); !errors.Is(err, ErrNotFound) {
		t.Errorf("kernel-id: %v, want the older 404 kept", err)
	}
	if l, err := s.List(ctx, "meta-data/public-keys/"); err != nil || len(l) != 1 {
		t.Errorf("public-keys: %q %v, want the older listing kept", l, err)
	}
}
