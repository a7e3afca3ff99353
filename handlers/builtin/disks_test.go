package builtin

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flint-dev/flint/disks"
	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/handlers/handlerstest"
)

// notesWith reports whether one of the handler's notes holds every part.
func notesWith(notes []string, parts ...string) bool {
	for _, n := range notes {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(n, p)
		}
		if all {
			return true
		}
	}
	return false
}

func TestTheDiskHandlersPlanForARootThatIsNotTheRunningSystem(t *testing.T) {
	const fstab = "LABEL=root\t/\text4\tdefaults\t0\t1\nsdq\t/old\tauto\tdefaults,comment=cloudconfig\t0\t2\n"
	for _, live := range []bool{false, true} {
		t.Run(map[bool]string{false: "without --live", true: "with --live"}[live], func(t *testing.T) {
			in := udInstance(t, "#cloud-config\n"+
				"mounts:\n - [ 'fileserver:/export', /data, nfs ]\n"+
				"swap: {filename: /swapfile, size: 64M}\n"+
				"disk_setup:\n  /dev/xvdf: {table_type: gpt, layout: true}\n"+
				"fs_setup:\n - {label: data, filesystem: ext4, device: /dev/xvdf, partition: auto}\n")
			if err := os.MkdirAll(filepath.Join(in.Root, "etc"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(in.Root, "etc/fstab"), []byte(fstab), 0o644); err != nil {
				t.Fatal(err)
			}
			// A Debian image: its default user takes the instance's keys.
			if err := os.WriteFile(filepath.Join(in.Root, "etc/os-release"), []byte("ID=debian\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			st, logs := runUD(t, in, func(s *handlers.Setup) { s.Live = live })
			want(t, st, map[string]string{"growpart": "planned", "resize-rootfs": "planned", "disk-setup": "planned", "mounts": "planned", "final-message": "ok"})
			if st.State != handlers.StateDone {
				t.Errorf("run is %s (warnings %q), want done\n%s", st.State, st.Warnings, logs)
			}
			for _, c := range []struct {
				handler string
				parts   []string
			}{
				{"growpart", []string{"would grow", "/", "mode auto"}},
				{"resize-rootfs", []string{"would resize the root filesystem"}},
				{"disk-setup", []string{"would partition /dev/xvdf", "gpt"}},
				{"disk-setup", []string{"would make filesystem ext4", `"data"`, "/dev/xvdf"}},
				{"mounts", []string{"would make swap file /swapfile"}},
				{"mounts", []string{"would add fstab line", "fileserver:/export /data nfs defaults,", "comment=cloudconfig"}},
				{"mounts", []string{"would add fstab line", "/swapfile none swap sw"}},
				{"mounts", []string{"would drop fstab line", "sdq"}},
			} {
				r := handlerstest.Result(st, c.handler)
				if !notesWith(r.Notes, c.parts...) {
					t.Errorf("%s: no note with %q in %q", c.handler, c.parts, r.Notes)
				}
			}
			if b, _ := os.ReadFile(filepath.Join(in.Root, "etc/fstab")); string(b) != fstab {
				t.Errorf("a planned run changed etc/fstab:\n%s", b)
			}
			if _, err := os.Lstat(filepath.Join(in.Root, "swapfile")); err == nil {
				t.Error("a planned run made the swap file")
			}
		})
	}
}

func TestGrowpartAndResizeRootfsOffAreNotPlanned(t *testing.T) {
	in := udInstance(t, "#cloud-config\ngrowpart: {mode: 'off'}\nresize_rootfs: no\n")
	st, _ := runUD(t, in, func(s *handlers.Setup) { s.Live = false })
	want(t, st, map[string]string{"growpart": "ok", "resize-rootfs": "ok", "disk-setup": "ok"})
	if r := handlerstest.Result(st, "growpart"); !notesWith(r.Notes, "growpart disabled") {
		t.Errorf("growpart notes %q, want it disabled", r.Notes)
	}
	if r := handlerstest.Result(st, "resize-rootfs"); !notesWith(r.Notes, "resize_rootfs disabled") {
		t.Errorf("resize-rootfs notes %q, want it disabled", r.Notes)
	}
}

func TestADiskItCannotIdentifyFailsThatHandlerAndTheChainGoesOn(t *testing.T) {
	in := udInstance(t, "#cloud-config\n"+
		"disk_setup:\n  ephemeral3: {layout: true}\n"+
		"fs_setup:\n - {label: scratch, filesystem: xfs, device: ebs9.1}\n"+
		"growpart: [not, a, mapping]\n"+
		"final_message: chain went on\n")
	st, logs := runUD(t, in, func(s *handlers.Setup) { s.Live = false })
	want(t, st, map[string]string{"disk-setup": "failed", "growpart": "failed", "resize-rootfs": "planned", "mounts": "ok", "final-message": "ok"})
	if st.State != handlers.StateDegraded {
		t.Errorf("run is %s, want degraded", st.State)
	}
	r := handlerstest.Result(st, "disk-setup")
	for _, w := range []string{"disk_setup: ephemeral3 names no device in block-device-mapping; nothing changed", "fs_setup: ebs9 names no device"} {
		if !strings.Contains(r.Reason, w) {
			t.Errorf("disk-setup's reason %q lacks %q", r.Reason, w)
		}
	}
	if strings.Contains(r.Reason, "\n") {
		t.Errorf("disk-setup's reason is not one line: %q", r.Reason)
	}
	if g := handlerstest.Result(st, "growpart"); !strings.Contains(g.Reason, "growpart: want a mapping") {
		t.Errorf("growpart's reason %q, want the key's type named", g.Reason)
	}
	if !strings.Contains(logs, "chain went on") {
		t.Errorf("final message missing: the chain stopped\n%s", logs)
	}
}

func TestResizeRootfsLeavesARootThatIsNoDeviceFilesystemAlone(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		skip       bool
	}{
		{"an initramfs", "1 0 0:1 / / rw - rootfs rootfs rw", true},
		{"an overlay", "1 0 0:30 / / rw - overlay overlay rw,lowerdir=/a", true},
		{"ext4 on a disk", "26 1 254:0 / / rw,relatime - ext4 /dev/vda rw", false},
		{"an unknown type on a device, refused later with its name", "26 1 254:0 / / rw - zonefs /dev/vda rw", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mi := filepath.Join(t.TempDir(), "mountinfo")
			if err := os.WriteFile(mi, []byte(tc.line+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			why := rootNotResizable(disks.Env{MountInfo: mi})
			if (why != "") != tc.skip {
				t.Errorf("rootNotResizable = %q, want skipped %v", why, tc.skip)
			}
		})
	}
	if why := rootNotResizable(disks.Env{MountInfo: "/nonexistent"}); why == "" {
		t.Error("an unreadable mount table was taken for a resizable root")
	}
}

// devicesAt is a machine whose only devices (and sysfs entries) are paths.
type devicesAt []string

func (d devicesAt) Exists(p string) bool     { return slices.Contains(d, p) }
func (d devicesAt) Realpath(p string) string { return p }

func TestAMountsEntryNamingAMissingDeviceFailsButAnImageLineDoesNot(t *testing.T) {
	cfg, err := disks.DecodeConfig([]byte("mounts:\n - [ xvdh, /data ]\n - [ xvdz, /scratch ]\n - [ xvdi, /srv ]\n - just-a-string\n"))
	if err != nil {
		t.Fatal(err)
	}
	plan := disks.PlanMounts(disks.MountsInput{
		Config: cfg, Fstab: "/dev/xvdi /srv ext4 defaults 0 2\n",
		Devices: devicesAt{"/dev/xvdh", "/sys/block/xvdh", "/dev/xvdi", "/sys/block/xvdi"},
		Systemd: true, Unit: mountsUnit,
	})
	refused := refusedMounts(plan)
	if len(refused) != 2 || !strings.Contains(refused[0], `device "xvdz" does not exist`) || !strings.Contains(refused[1], "not a list") {
		t.Errorf("refused %q, want the missing xvdz and the string entry only (notes %q)", refused, plan.Notes)
	}
	if len(plan.Added) != 1 || !strings.HasPrefix(plan.Added[0], "/dev/xvdh /data auto defaults,nofail,x-systemd.requires=flint.service") {
		t.Errorf("fstab adds %q, want the xvdh line written all the same", plan.Added)
	}
}

func TestGrowpartFailsOnlyForDevicesTheUserNamed(t *testing.T) {
	results := []disks.GrowResult{
		{Entry: "/", Action: "skipped", Message: "vda is not a partition (a whole disk or an unknown device type); nothing changed"},
		{Entry: "/data", Action: "nochange", Message: "no change necessary (/dev/xvdb, 1)"},
		{Entry: "/dev/xvdq", Action: "failed", Message: "write table: input/output error"},
	}
	if got := growpartFailures(results, false); len(got) != 1 || !strings.Contains(got[0], "/dev/xvdq: failed") {
		t.Errorf("with the default devices: %q, want only the failed grow", got)
	}
	if got := growpartFailures(results, true); len(got) != 2 || !strings.Contains(got[0], "growpart /: skipped") {
		t.Errorf("with devices named in user-data: %q, want the skip and the failure", got)
	}
	off := []disks.GrowResult{{Entry: "*", Action: "skipped", Message: "growpart disabled: /etc/growroot-disabled exists"}}
	if got := growpartFailures(off, true); len(got) != 0 {
		t.Errorf("growroot-disabled fails the handler: %q", got)
	}
}
