package disks

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flint-dev/flint/internal/testenv"
)

// fakeDevices is a fixed set of existing paths; symlinks resolve to
// themselves. The cloud-init peer is given the same set.
type fakeDevices map[string]bool

func (f fakeDevices) Exists(p string) bool     { return f[p] }
func (f fakeDevices) Realpath(p string) string { return p }

func disk(names ...string) []string {
	var out []string
	for _, n := range names {
		base := n
		if i := strings.IndexByte(n, '/'); i >= 0 {
			base = n[:i]
		}
		out = append(out, "/dev/"+filepath.Base(n), "/sys/block/"+n)
		_ = base
	}
	return out
}

var ec2BDM = map[string]string{"ami": "sda1", "ephemeral0": "sdb", "root": "/dev/sda1"}

type mountsCase struct {
	name    string
	cfg     string
	bdm     map[string]string
	exists  []string
	fstab   *string
	systemd bool
	// peerOnly are lines cloud-init 22.4 writes and flint deliberately
	// does not (docs/cloud-config.md, mounts).
	peerOnly []string
	// notes are substrings of flint's notes.
	notes []string
	// peerFails: cloud-init's module raises this (and writes nothing)
	// where flint skips the bad entry and writes the rest.
	peerFails string
}

func sp(s string) *string { return &s }

const baseFstab = "# /etc/fstab\nLABEL=root\t/\text4\tdefaults\t0 1\n"

var mountsCases = []mountsCase{
	{name: "no user-data on an instance with sdb mapped and xvdb present mounts it at /mnt",
		bdm: ec2BDM, exists: disk("xvdb"), fstab: sp(baseFstab), systemd: true},
	{name: "no block-device-mapping leaves fstab alone",
		exists: disk("xvdb"), fstab: sp(baseFstab), systemd: true},
	{name: "ephemeral0 mapped to a device that never appears (t1.micro) leaves fstab alone",
		bdm: ec2BDM, exists: disk("xvda"), fstab: sp(baseFstab), systemd: true},
	{name: "short entries are completed from the defaults and numbers become text",
		cfg: "mounts:\n - [ xvdh, /opt/data ]\n - [ xvdi, /srv, ext4, \"defaults,noatime\", 0, 0 ]\n",
		bdm: ec2BDM, exists: disk("xvdb", "xvdh", "xvdi"), fstab: sp(baseFstab), systemd: true},
	{name: "mount_default_fields replace cloud-init's defaults for entries and ephemeral0",
		cfg: "mount_default_fields: [ None, None, auto, \"defaults,nofail\", \"0\", \"2\" ]\nmounts:\n - [ sdc, /opt/data ]\n",
		bdm: ec2BDM, exists: disk("xvdb", "sdc"), fstab: sp(baseFstab), systemd: true},
	{name: "a null mount point for ephemeral0 drops the default /mnt entry",
		cfg: "mounts:\n - [ ephemeral0, null ]\n", bdm: ec2BDM, exists: disk("xvdb"), fstab: sp(baseFstab), systemd: true},
	{name: "ephemeral0 moved to another mount point keeps one entry",
		cfg: "mounts:\n - [ ephemeral0, /scratch, ext4 ]\n", bdm: ec2BDM, exists: disk("xvdb"), fstab: sp(baseFstab), systemd: true},
	{name: "lines written before are replaced and other lines kept",
		cfg: "mounts:\n - [ xvdh, /data ]\n",
		bdm: ec2BDM, exists: disk("xvdb", "xvdh"),
		fstab:   sp(baseFstab + "/dev/xvdg\t/old\tauto\tdefaults,comment=cloudconfig\t0\t2\n/dev/xvdz /keep ext4 defaults 0 2\n"),
		systemd: true},
	{name: "a dotted partition of a /dev path and a disk with a first partition resolve to partitions",
		cfg: "mounts:\n - [ /dev/xvdc.2, /two ]\n - [ xvdd, /d ]\n",
		bdm: ec2BDM, exists: append(disk("xvdb", "xvdc", "xvdc/xvdc2", "xvdd", "xvdd/xvdd1"), "/dev/xvdc2", "/dev/xvdd1"),
		fstab: sp(baseFstab), systemd: true},
	{name: "a dotted short name is not expanded, so its device is missing",
		cfg: "mounts:\n - [ xvdc.2, /two ]\n",
		bdm: ec2BDM, exists: append(disk("xvdb", "xvdc", "xvdc/xvdc2"), "/dev/xvdc2"),
		fstab: sp(baseFstab), systemd: true,
		peerOnly: []string{"xvdc.2\t/two\tauto\tdefaults,nofail,x-systemd.requires=cloud-init.service,_netdev,comment=cloudconfig\t0\t2"},
		notes:    []string{`device "xvdc.2" does not exist`}},
	{name: "a network filesystem is written as given",
		cfg: "mounts:\n - [ \"server:/export\", /nfs, nfs, \"rw,nofail\" ]\n", bdm: ec2BDM, exists: disk("xvdb"), fstab: sp(baseFstab), systemd: true},
	{name: "the euca ephemeral key stands for ephemeral0",
		bdm: map[string]string{"ephemeral": "sdb"}, exists: disk("sdb"), fstab: sp(baseFstab), systemd: true},
	{name: "without systemd the options are defaults,nobootwait",
		bdm: ec2BDM, exists: disk("vdb"), fstab: sp(baseFstab), systemd: false},
	{name: "a swap entry from block-device-mapping and a swap file are both written",
		cfg: "swap:\n  filename: /swapfile\n  size: 1M\n",
		bdm: map[string]string{"ephemeral0": "sdb", "swap": "sdc"}, exists: disk("xvdb", "xvdc"), fstab: sp(baseFstab), systemd: true},
	{name: "no fstab at all gets one with the ephemeral entry",
		bdm: ec2BDM, exists: disk("xvdb"), systemd: true},
	{name: "an entry naming a missing device is left out with a note",
		cfg: "mounts:\n - [ sdz, /nope ]\n", bdm: ec2BDM, exists: disk("xvdb"), fstab: sp(baseFstab), systemd: true,
		peerOnly: []string{"sdz\t/nope\tauto\tdefaults,nofail,x-systemd.requires=cloud-init.service,_netdev,comment=cloudconfig\t0\t2"},
		notes:    []string{`mounts entry 1 skipped: device "sdz" does not exist`}},
	{name: "an entry for a device already in fstab leaves that line as the only one",
		cfg: "mounts:\n - [ xvdh, /data ]\n", bdm: ec2BDM, exists: disk("xvdb", "xvdh"),
		fstab: sp(baseFstab + "/dev/xvdh /srv ext4 defaults 0 2\n"), systemd: true,
		peerOnly: []string{"xvdh\t/data\tauto\tdefaults,nofail,x-systemd.requires=cloud-init.service,_netdev,comment=cloudconfig\t0\t2"},
		notes:    []string{"/dev/xvdh is already in fstab"}},
	{name: "a mounts item that is not a list is reported and skipped",
		cfg: "mounts:\n - xvdh\n - [ xvdi, /i ]\n", bdm: ec2BDM, exists: disk("xvdb", "xvdh", "xvdi"), fstab: sp(baseFstab), systemd: true,
		peerFails: "AttributeError",
		notes:     []string{"mounts entry 1 skipped: line 2: mounts entry is a value"}},
}

type peerResult struct {
	Fstab *string    `json:"fstab"`
	Cmds  [][]string `json:"cmds"`
	Error *string    `json:"error"`
}

func runMountsPeer(t *testing.T, cases []mountsCase) []peerResult {
	t.Helper()
	py := testenv.Tool(t, "/usr/bin/python3")
	_, err := os.Stat("/usr/lib/python3/dist-packages/cloudinit/config/cc_mounts.py")
	testenv.Need(t, err == nil, "needs Debian's cloud-init (apt package cloud-init)")
	var reqs []map[string]any
	for _, c := range cases {
		reqs = append(reqs, map[string]any{"cfg": c.cfg, "bdm": c.bdm, "exists": c.exists, "fstab": c.fstab, "systemd": c.systemd})
	}
	req, _ := json.Marshal(reqs)
	cmd := exec.Command(py, "testdata/cc_mounts_peer.py")
	cmd.Stdin = bytes.NewReader(req)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cloud-init peer: %v: %s", err, stderr.String())
	}
	var r []peerResult
	if err := json.Unmarshal(out, &r); err != nil || len(r) != len(cases) {
		t.Fatalf("cloud-init peer output %q: %v", out, err)
	}
	return r
}

func flintMounts(t *testing.T, c mountsCase) MountsPlan {
	t.Helper()
	cfg, err := DecodeConfig([]byte(c.cfg))
	if err != nil {
		t.Fatalf("DecodeConfig: %v", err)
	}
	in := MountsInput{Config: cfg, BlockDeviceMapping: c.bdm, Devices: fakeDevices{},
		Systemd: c.systemd, Unit: "cloud-init.service"}
	for _, p := range c.exists {
		in.Devices.(fakeDevices)[p] = true
	}
	if c.fstab != nil {
		in.Fstab = *c.fstab
	}
	if cfg.Swap != nil && (cfg.Swap.Size > 0 || cfg.Swap.SizeAuto) {
		in.SwapFile = cfg.Swap.Filename
	}
	return PlanMounts(in)
}

// TestPlanMountsWritesTheFstabCloudInitWrites runs cloud-init 22.4's
// cc_mounts.handle on the same input and compares the fstab and the
// activation commands. The unit is set to cloud-init.service here so the
// text compares; flint's handler passes flint.service.
func TestPlanMountsWritesTheFstabCloudInitWrites(t *testing.T) {
	peers := runMountsPeer(t, mountsCases)
	for i, c := range mountsCases {
		t.Run(c.name, func(t *testing.T) {
			peer := peers[i]
			plan := flintMounts(t, c)
			if c.peerFails != "" {
				if peer.Error == nil || !strings.Contains(*peer.Error, c.peerFails) {
					t.Fatalf("cloud-init no longer fails with %s (got %v); the listed difference is gone", c.peerFails, peer.Error)
				}
				if !plan.Write {
					t.Errorf("flint wrote nothing; the good entries should be written")
				}
			} else if peer.Error != nil {
				t.Fatalf("cloud-init peer failed: %s", *peer.Error)
			}

			want := ""
			if peer.Fstab != nil {
				want = *peer.Fstab
			}
			for _, l := range c.peerOnly {
				if !strings.Contains(want, l+"\n") {
					t.Fatalf("cloud-init no longer writes %q; the listed difference is gone:\n%s", l, want)
				}
				want = strings.Replace(want, l+"\n", "", 1)
			}
			got := ""
			if c.fstab != nil {
				got = *c.fstab
			}
			if plan.Write {
				got = plan.Fstab
			}
			if c.fstab == nil && !plan.Write {
				got = ""
			}
			if c.peerFails == "" && got != want {
				t.Errorf("fstab differs from cloud-init's\nflint:\n%s\ncloud-init:\n%s", got, want)
			}
			var cmds [][]string
			if plan.Write {
				if plan.Swapon {
					cmds = append(cmds, []string{"swapon", "-a"})
				}
				if plan.MountAll {
					cmds = append(cmds, []string{"mount", "-a"})
					if c.systemd {
						cmds = append(cmds, []string{"systemctl", "daemon-reload"})
					}
				}
			}
			if len(c.peerOnly) == 0 && c.peerFails == "" && !slices.EqualFunc(cmds, peer.Cmds, slices.Equal[[]string]) {
				t.Errorf("activation commands %v, cloud-init runs %v", cmds, peer.Cmds)
			}
			for _, n := range c.notes {
				if !slices.ContainsFunc(plan.Notes, func(s string) bool { return strings.Contains(s, n) }) {
					t.Errorf("notes %q lack %q", plan.Notes, n)
				}
			}
			for _, n := range plan.Notes {
				if strings.Contains(n, "\n") {
					t.Errorf("note is more than one line: %q", n)
				}
			}
		})
	}
}

func TestPlanMountsUsesNVMeInstanceStoresForEphemeral(t *testing.T) {
	sys := t.TempDir()
	for name, model := range map[string]string{
		"nvme0n1":  "Amazon Elastic Block Store",
		"nvme1n1":  InstanceStoreModel,
		"nvme10n1": InstanceStoreModel,
		"nvme2n1":  InstanceStoreModel + "   \n",
	} {
		if err := os.MkdirAll(filepath.Join(sys, "block", name, "device"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sys, "block", name, "device", "model"), []byte(model), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stores := FindInstanceStores(sys)
	if want := []string{"/dev/nvme1n1", "/dev/nvme2n1", "/dev/nvme10n1"}; !slices.Equal(stores, want) {
		t.Fatalf("FindInstanceStores = %v, want %v", stores, want)
	}
	cfg, _ := DecodeConfig([]byte("mounts:\n - [ ephemeral1, /scratch1 ]\n"))
	plan := PlanMounts(MountsInput{Config: cfg, BlockDeviceMapping: ec2BDM, InstanceStores: stores,
		Devices: fakeDevices{"/dev/nvme1n1": true, "/sys/block/nvme1n1": true, "/dev/nvme2n1": true, "/sys/block/nvme2n1": true},
		Fstab:   baseFstab, Systemd: true, Unit: "flint.service"})
	want := baseFstab +
		"/dev/nvme2n1\t/scratch1\tauto\tdefaults,nofail,x-systemd.requires=flint.service,_netdev,comment=cloudconfig\t0\t2\n" +
		"/dev/nvme1n1\t/mnt\tauto\tdefaults,nofail,x-systemd.requires=flint.service,_netdev,comment=cloudconfig\t0\t2\n"
	if plan.Fstab != want {
		t.Errorf("fstab:\n%s\nwant:\n%s", plan.Fstab, want)
	}
}

// recorder is a Runner that records commands and runs nothing.
type recorder struct{ cmds [][]string }

func (r *recorder) Run(_ context.Context, name string, args ...string) ([]byte, error) {
	r.cmds = append(r.cmds, append([]string{name}, args...))
	return nil, nil
}

func TestApplyMountsWritesFstabAtomicallyAndActivates(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/fstab"), []byte(baseFstab), 0o640); err != nil {
		t.Fatal(err)
	}
	plan := PlanMounts(MountsInput{BlockDeviceMapping: ec2BDM, Devices: fakeDevices{"/dev/xvdb": true, "/sys/block/xvdb": true},
		Fstab: baseFstab, Systemd: true, Unit: "flint.service"})
	var r recorder
	if err := ApplyMounts(context.Background(), &r, root, plan, true); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(root, "etc/fstab"))
	if string(b) != plan.Fstab {
		t.Errorf("fstab = %q, want %q", b, plan.Fstab)
	}
	if st, _ := os.Stat(filepath.Join(root, "etc/fstab")); st.Mode().Perm() != 0o640 {
		t.Errorf("fstab mode = %v, want 0640 kept", st.Mode().Perm())
	}
	if st, err := os.Stat(filepath.Join(root, "mnt")); err != nil || !st.IsDir() {
		t.Errorf("mount point /mnt not created: %v", err)
	}
	want := [][]string{{"mount", "-a"}, {"systemctl", "daemon-reload"}}
	if !slices.EqualFunc(r.cmds, want, slices.Equal[[]string]) {
		t.Errorf("commands %v, want %v", r.cmds, want)
	}
	ents, _ := os.ReadDir(filepath.Join(root, "etc"))
	if len(ents) != 1 {
		t.Errorf("etc holds %d entries, want fstab alone (no temporary left)", len(ents))
	}
}

func TestAMountsEntryNamingAMissingDeviceChangesNothing(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	fstab := filepath.Join(root, "etc/fstab")
	if err := os.WriteFile(fstab, []byte(baseFstab), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := DecodeConfig([]byte("mounts:\n - [ xvdq, /data ]\n"))
	if err != nil {
		t.Fatal(err)
	}
	plan := PlanMounts(MountsInput{Config: cfg, Devices: fakeDevices{}, Fstab: baseFstab, Systemd: true, Unit: "flint.service"})
	want := `mounts entry 1 skipped: device "xvdq" does not exist; fstab keeps no line for it`
	if len(plan.Notes) != 1 || plan.Notes[0] != want {
		t.Errorf("notes = %q, want [%q]", plan.Notes, want)
	}
	var r recorder
	if err := ApplyMounts(context.Background(), &r, root, plan, true); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(fstab); string(b) != baseFstab || len(r.cmds) != 0 {
		t.Errorf("fstab %q and commands %v changed for a missing device", b, r.cmds)
	}
}
