package builtin

import (
	"slices"
	"strings"
	"testing"

	"github.com/flint-dev/flint/internal/accounts"
	"github.com/flint-dev/flint/sshkeys"
	"github.com/flint-dev/flint/userdata"
)

func TestTheUsersPlanCreatesWhatIsMissingAndAddsOnlyMissingGroups(t *testing.T) {
	db := accounts.Parse(
		[]byte("root:x:0:0:root:/root:/bin/sh\nadmin:x:1000:1000::/home/admin:/bin/sh\n"),
		[]byte("root:x:0:\nadm:x:4:admin\nsudo:x:27:\n"))
	specs := []userSpec{
		{Name: "admin", Groups: []string{"adm", "sudo"}, Default: true, LockPasswd: true},
		{Name: "dev", Groups: []string{"docker", "sudo"}, PrimaryGroup: "staff", Sudo: []string{"ALL=(ALL) ALL"}},
	}
	no := false
	p, err := planUsers(specs, &userdata.Chpasswd{Expire: &no, Users: []userdata.ChpasswdUser{{Name: "dev", Password: "$6$x$y", Type: "hash"}}}, db, "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.groups, []string{"docker", "staff"}) {
		t.Errorf("groups to create %v, want [docker staff]", p.groups)
	}
	if p.users[0].create || !slices.Equal(p.users[0].appendGroups, []string{"sudo"}) {
		t.Errorf("admin: %+v, want kept and added to sudo only", p.users[0])
	}
	if !p.users[1].create || p.users[1].appendGroups != nil {
		t.Errorf("dev: %+v, want created", p.users[1])
	}
	if p.expire || len(p.passwords) != 1 || !strings.Contains(p.sudoers, "\ndev ALL=(ALL) ALL\n") {
		t.Errorf("passwords %d expire %v sudoers %q", len(p.passwords), p.expire, p.sudoers)
	}
	for _, n := range p.notes() {
		if strings.Contains(n, "$6$") {
			t.Errorf("a note holds a password hash: %q", n)
		}
	}
	svc, err := planUsers([]userSpec{{Name: "svc", System: true}}, nil, db, "")
	if err != nil || !slices.Contains(svc.notes(), "user svc: create (groups none, shell the image's default)") {
		t.Errorf("a user without groups or shell: %q %v", svc.notes(), err)
	}
	if _, err := planUsers(nil, &userdata.Chpasswd{List: []userdata.ChpasswdUser{{Name: "dev", Type: "RANDOM"}}}, db, ""); err == nil {
		t.Error("a RANDOM chpasswd password was planned")
	}
}

func TestTheKeysPlanGivesRootTheSharedKeysBehindTheForcedCommand(t *testing.T) {
	md, probs := sshkeys.Parse("metadata", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO+kE/+KKx4mb6XO165mscrkRWw77I8p+O3ETxZJtQag alice@laptop")
	if len(md) != 1 || len(probs) != 0 {
		t.Fatalf("fixture key: %v %v", md, probs)
	}
	specs := []userSpec{{Name: "admin", Default: true}, {Name: "dev"}}
	off := false
	for _, tc := range []struct {
		name     string
		cfg      sshKeysConfig
		cc       userdata.CloudConfig
		rootOpts string
	}{
		{"by default", sshKeysConfig{}, userdata.CloudConfig{}, `Please login as the user \"admin\" rather than the user \"root\".`},
		{"with disable_root off in cloud-config", sshKeysConfig{}, userdata.CloudConfig{DisableRoot: &off}, ""},
		{"with flint.yaml's own forced command", sshKeysConfig{DisableRootOpts: `command="echo $USER not $DISABLE_USER"`}, userdata.CloudConfig{}, "echo admin not root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := planKeys(tc.cfg, &tc.cc, specs, md, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.grants) != 2 || p.grants[0].user != "admin" || p.grants[1].user != "root" {
				t.Fatalf("grants %+v, want admin then root", p.grants)
			}
			if got := p.grants[0].keys[0].Options; len(got) != 0 {
				t.Errorf("admin's key has options %v", got)
			}
			opts := strings.Join(p.grants[1].keys[0].Options, ",")
			if tc.rootOpts == "" && opts != "" || !strings.Contains(opts, tc.rootOpts) {
				t.Errorf("root's key options %q, want %q", opts, tc.rootOpts)
			}
		})
	}
	if _, err := planKeys(sshKeysConfig{DisableRootOpts: `command="unterminated`}, &userdata.CloudConfig{}, specs, md, nil, nil); err == nil {
		t.Error("a broken forced command was planned: root would get a plain key")
	}
}

func TestTheHostKeysPlanKeepsOrReplacesTheImagesKeys(t *testing.T) {
	existing := []string{"ssh_host_ed25519_key", "ssh_host_ed25519_key.pub", "ssh_host_rsa_key", "ssh_host_rsa_key.pub"}
	typesOf := func(p hostKeysPlan) (gen, given []string) {
		for _, k := range p.keys {
			if k.given != nil {
				given = append(given, k.typ)
			} else {
				gen = append(gen, k.typ)
			}
		}
		return gen, given
	}
	p, err := planHostKeys(hostKeysConfig{}, &userdata.CloudConfig{}, existing)
	if gen, _ := typesOf(p); err != nil || !slices.Equal(p.remove, existing) || !slices.Equal(gen, sshkeys.HostKeyTypes) {
		t.Errorf("default: remove %v generate %v (%v); want all removed and all made anew", p.remove, gen, err)
	}
	keep := false
	p, _ = planHostKeys(hostKeysConfig{DeleteExisting: &keep}, &userdata.CloudConfig{SSHGenKeyTypes: []string{"ed25519", "ecdsa"}}, existing)
	if gen, _ := typesOf(p); p.remove != nil || !slices.Equal(gen, []string{"ecdsa"}) {
		t.Errorf("keeping: remove %v generate %v; want nothing removed and only the missing ecdsa made", p.remove, gen)
	}
	cc := &userdata.CloudConfig{SSHKeys: map[string]string{"ed25519_private": "PRIVATE", "ed25519_public": "ssh-ed25519 AAAA", "rsa_certificate": "ssh-rsa-cert-v01@openssh.com AAAA"}}
	p, _ = planHostKeys(hostKeysConfig{Types: []string{"ed25519"}}, cc, nil)
	if gen, given := typesOf(p); gen != nil || !slices.Equal(given, []string{"ed25519"}) || p.certs["rsa"] == nil {
		t.Errorf("given: generate %v given %v certs %v; want the given pair and certificate only", gen, given, p.certs)
	}
	if _, err := planHostKeys(hostKeysConfig{Types: []string{"dsa"}}, &userdata.CloudConfig{}, nil); err == nil || !strings.Contains(err.Error(), `"dsa"`) {
		t.Errorf("an unknown key type: %v", err)
	}
}
