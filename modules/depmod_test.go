package modules

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/flint-dev/flint/internal/testenv"
)

// A modules.dep the way depmod writes it: dependencies transitive, the one
// to load first last.
const sampleDep = `kernel/fs/ext4/ext4.ko.xz: kernel/fs/jbd2/jbd2.ko.xz kernel/fs/mbcache.ko.xz kernel/lib/crc16.ko.xz
kernel/fs/jbd2/jbd2.ko.xz:
kernel/fs/mbcache.ko.xz:
kernel/lib/crc16.ko.xz:
kernel/drivers/net/ena/ena.ko.zst:
kernel/net/sched/sch-fq.ko: kernel/net/sched/sch-base.ko
kernel/net/sched/sch-base.ko: kernel/lib/crc16.ko.xz
kernel/a/loop1.ko: kernel/a/loop2.ko
kernel/a/loop2.ko: kernel/a/loop1.ko
`

func TestLoadOrderPutsDependenciesFirstAndSkipsLoaded(t *testing.T) {
	g, err := ParseDep(strings.NewReader(sampleDep))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		names []string
		skip  []string
		want  []string
		err   string
	}{
		{name: "a module without dependencies is loaded alone", names: []string{"ena"}, want: []string{"kernel/drivers/net/ena/ena.ko.zst"}},
		{name: "dependencies come first, the deepest first", names: []string{"ext4"},
			want: []string{"kernel/lib/crc16.ko.xz", "kernel/fs/mbcache.ko.xz", "kernel/fs/jbd2/jbd2.ko.xz", "kernel/fs/ext4/ext4.ko.xz"}},
		{name: "a shared dependency is loaded once", names: []string{"ext4", "sch_fq"},
			want: []string{"kernel/lib/crc16.ko.xz", "kernel/fs/mbcache.ko.xz", "kernel/fs/jbd2/jbd2.ko.xz", "kernel/fs/ext4/ext4.ko.xz", "kernel/net/sched/sch-base.ko", "kernel/net/sched/sch-fq.ko"}},
		{name: "dashes and underscores name the same module", names: []string{"sch-fq"}, skip: []string{"sch_base", "crc16"},
			want: []string{"kernel/net/sched/sch-fq.ko"}},
		{name: "loaded dependencies are skipped", names: []string{"ext4"}, skip: []string{"jbd2", "crc16"},
			want: []string{"kernel/fs/mbcache.ko.xz", "kernel/fs/ext4/ext4.ko.xz"}},
		{name: "a loaded module needs nothing", names: []string{"ext4"}, skip: []string{"ext4"}, want: nil},
		{name: "an unknown module is an error", names: []string{"nosuch"}, err: "not in modules.dep"},
		{name: "a cycle is an error", names: []string{"loop1"}, err: "cycle: loop1 -> loop2 -> loop1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			skip := map[string]bool{}
			for _, s := range tc.skip {
				skip[s] = true
			}
			got, err := g.LoadOrder(tc.names, skip)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, %v; want %q", got, err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q, %v\nwant %q", got, err, tc.want)
			}
		})
	}
}

func TestModuleNamesAreNormalised(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/net/sched/sch-fq.ko.zst": "sch_fq",
		"ext4.ko.xz":                     "ext4",
		"virtio-net":                     "virtio_net",
		"kernel/x/y.ko.gz":               "y",
	} {
		if got := ModuleName(in); got != want {
			t.Errorf("ModuleName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPlanLoadReadsTheTreeAndProcModules(t *testing.T) {
	root := t.TempDir()
	tree := filepath.Join(root, "lib", "modules", rel)
	os.MkdirAll(tree, 0o755)
	os.WriteFile(filepath.Join(tree, "modules.dep"), []byte(sampleDep), 0o644)
	os.WriteFile(filepath.Join(tree, "modules.builtin"), []byte("kernel/fs/mbcache.ko\n"), 0o644)
	proc := "jbd2 126976 1 ext4, Live 0x0000000000000000\n"
	plan, err := PlanLoad(root, rel, []string{"ext4", "mbcache"}, strings.NewReader(proc))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"kernel/lib/crc16.ko.xz", "kernel/fs/ext4/ext4.ko.xz"}
	if !reflect.DeepEqual(plan.Files, want) || !reflect.DeepEqual(plan.Skipped, []string{"mbcache"}) {
		t.Fatalf("plan %+v, want files %q and mbcache skipped", plan, want)
	}
}

func TestRunDepmodReportsItsFailureInOneLine(t *testing.T) {
	_, err := lookDepmod()
	testenv.Need(t, err == nil, "needs depmod (kmod)")
	err = RunDepmod(context.Background(), t.TempDir(), "no-such-release")
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "depmod -b") {
		t.Fatalf("got %v", err)
	}
}

// A tree whose directory links to its parent makes depmod walk it without
// end, writing gigabytes of errors a second: it is stopped, with one line,
// and what it wrote is not all kept.
func TestDepmodOnALoopingTreeIsStoppedWithOneLine(t *testing.T) {
	bin, err := lookDepmod()
	testenv.Need(t, err == nil, "needs depmod (kmod)")
	base := t.TempDir()
	tree := filepath.Join(base, "lib", "modules", "9.9.9")
	if err := os.MkdirAll(filepath.Join(tree, "kernel"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(tree, "kernel", "a.ko"), []byte("not a module"), 0o644)
	os.Symlink(".", filepath.Join(tree, "kernel", "self"))
	os.Symlink("..", filepath.Join(tree, "kernel", "up"))
	said, err := runDepmod(context.Background(), bin, base, "9.9.9", "")
	if err == nil || !strings.Contains(err.Error(), "does a directory link to one of its parents?") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("err = %v", err)
	}
	if n := len(strings.Join(said, "\n")); n > depmodKeep {
		t.Errorf("kept %d bytes of depmod's complaints, more than %d", n, depmodKeep)
	}
}

func TestPackDropsALinkToADirectoryThatHoldsIt(t *testing.T) {
	for _, c := range []struct {
		rel, target string
		loop        bool
	}{
		{"kernel/self", ".", true},
		{"kernel/up", "..", true},
		{"kernel/drivers/up2", "../..", true},
		{"top", ".", true},
		{"kernel/abs", "/lib/modules/9.9.9/kernel", true},
		{"extra", "kernel/drivers", false},
		{"kernel/sibling", "../extra", false},
		{"kernel/mod.ko", "drivers/a.ko", false},
	} {
		_, err := treeLink(c.rel, c.target, "9.9.9")
		if (err != nil) != c.loop {
			t.Errorf("%s -> %s: err %v, want a loop: %v", c.rel, c.target, err, c.loop)
		}
	}
}
