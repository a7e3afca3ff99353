package modules

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/flint-dev/flint/internal/testenv"
)

func TestInstallUnpacksEveryFormatAndKeepsModesAndTimes(t *testing.T) {
	for _, f := range []Format{FormatTar, FormatTarGz, FormatTarXz, FormatTarZst} {
		t.Run("a "+string(f)+" bundle installs", func(t *testing.T) {
			top := t.TempDir()
			root := filepath.Join(top, "root")
			b := writeBundle(t, top, "m."+string(f), compress(t, f, makeTar(t, goodTree(rel, "new"))))
			in := &Installer{Root: root, Release: rel, Depmod: fakeDepmod}
			res, err := in.Install(context.Background(), b)
			if err != nil {
				t.Fatal(err)
			}
			if res.AlreadyInstalled || res.Replaced || res.Record.Format != f || res.Record.SHA256 != b.SHA256 {
				t.Fatalf("unexpected result %+v", res)
			}
			tree := filepath.Join(root, "lib", "modules", rel)
			got, err := os.ReadFile(filepath.Join(tree, "kernel/drivers/a.ko"))
			if err != nil || string(got) != "module a new" {
				t.Fatalf("a.ko = %q, %v", got, err)
			}
			fi, err := os.Stat(filepath.Join(tree, "kernel/drivers/b.ko"))
			if err != nil || fi.Mode().Perm() != 0o600 || !fi.ModTime().Equal(testMtime) {
				t.Fatalf("b.ko: %v %v %v", fi.Mode(), fi.ModTime(), err)
			}
			if st := fi.Sys().(*syscall.Stat_t); os.Geteuid() == 0 && (st.Uid != 0 || st.Gid != 0) {
				t.Fatalf("b.ko owned by %d:%d, want root", st.Uid, st.Gid)
			}
			di, err := os.Stat(filepath.Join(tree, "kernel"))
			if err != nil || !di.ModTime().Equal(testMtime) || di.Mode().Perm() != 0o755 {
				t.Fatalf("kernel/: %v %v %v", di.Mode(), di.ModTime(), err)
			}
			if l, err := os.Readlink(filepath.Join(tree, "extra")); err != nil || l != "kernel/drivers" {
				t.Fatalf("extra -> %q, %v", l, err)
			}
			a, _ := os.Stat(filepath.Join(tree, "kernel/drivers/a.ko"))
			a2, _ := os.Stat(filepath.Join(tree, "kernel/drivers/a-again.ko"))
			if !os.SameFile(a, a2) {
				t.Fatal("the hard link is not a hard link")
			}
			if _, err := os.Stat(filepath.Join(tree, "modules.dep")); err != nil {
				t.Fatal("depmod did not run on the tree")
			}
			ents, _ := os.ReadDir(filepath.Join(root, "lib", "modules"))
			for _, e := range ents {
				if e.Name() != rel && !strings.HasSuffix(e.Name(), lockTag) {
					t.Errorf("leftover %s", e.Name())
				}
			}
		})
	}
}

func TestInstallAcceptsTheShortReleaseLayout(t *testing.T) {
	top := t.TempDir()
	b := writeBundle(t, top, "ec2-modules.tgz", compress(t, FormatTarGz, makeTar(t, []ent{
		{name: "./" + rel + "/", typ: tar.TypeDir},
		{name: "./" + rel + "/kernel/net/x.ko", body: "x"},
	})))
	in := &Installer{Root: filepath.Join(top, "root"), Release: rel, Depmod: fakeDepmod}
	if _, err := in.Install(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(top, "root/lib/modules", rel, "kernel/net/x.ko")); err != nil {
		t.Fatal(err)
	}
}

func TestInstallIsANoOpWhenTheSameBundleIsInstalled(t *testing.T) {
	top := t.TempDir()
	b := writeBundle(t, top, "m.tar.gz", compress(t, FormatTarGz, makeTar(t, goodTree(rel, "new"))))
	in := &Installer{Root: filepath.Join(top, "root"), Release: rel, Depmod: fakeDepmod}
	if _, err := in.Install(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, top)
	opened := false
	in.Open = func(context.Context, Bundle) (io.ReadCloser, error) {
		opened = true
		return nil, errors.New("must not fetch")
	}
	res, err := in.Install(context.Background(), b)
	if err != nil || !res.AlreadyInstalled || opened {
		t.Fatalf("second install: %+v, %v, fetched=%v", res, err, opened)
	}
	if d := diffSnapshots(before, snapshot(t, top)); d != "" {
		t.Fatalf("a no-op install changed files:\n%s", d)
	}
}

func TestInstallReplacesAnotherBundleAndRemovesTheOldTree(t *testing.T) {
	top := t.TempDir()
	root := filepath.Join(top, "root")
	in := &Installer{Root: root, Release: rel, Depmod: fakeDepmod}
	old := writeBundle(t, top, "old.tar.gz", compress(t, FormatTarGz, makeTar(t, goodTree(rel, "old"))))
	nw := writeBundle(t, top, "new.tar.zst", compress(t, FormatTarZst, makeTar(t, goodTree(rel, "new"))))
	if _, err := in.Install(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	res, err := in.Install(context.Background(), nw)
	if err != nil || !res.Replaced {
		t.Fatalf("replace: %+v, %v", res, err)
	}
	st, err := ReadStatus(root, rel)
	if err != nil || !st.Installed(nw.SHA256) || st.Old || len(st.Leftovers) != 0 {
		t.Fatalf("status after replace: %+v, %v", st, err)
	}
	if _, err := os.Lstat(filepath.Join(st.Dir, retiredName)); err == nil {
		t.Fatal("the new tree carries the retired mark")
	}
}

func TestInstallReplacesADistributionTreeWithoutRecord(t *testing.T) {
	top := t.TempDir()
	root := filepath.Join(top, "root")
	tree := filepath.Join(root, "lib/modules", rel)
	os.MkdirAll(tree, 0o755)
	os.WriteFile(filepath.Join(tree, "modules.dep"), nil, 0o644)
	in := &Installer{Root: root, Release: rel, Depmod: fakeDepmod}
	b := writeBundle(t, top, "new.tar", makeTar(t, goodTree(rel, "new")))
	if res, err := in.Install(context.Background(), b); err != nil || !res.Replaced {
		t.Fatalf("%+v, %v", res, err)
	}
}

func TestInstallFailsWithoutDepmodUnlessTheBundleIsIndexed(t *testing.T) {
	noDepmod := func(context.Context, string, string) error { return ErrNoDepmod }
	top := t.TempDir()
	in := &Installer{Root: filepath.Join(top, "root"), Release: rel, Depmod: noDepmod}
	b := writeBundle(t, top, "plain.tar", makeTar(t, goodTree(rel, "new")))
	if _, err := in.Install(context.Background(), b); !errors.Is(err, ErrNoDepmod) {
		t.Fatalf("want ErrNoDepmod, got %v", err)
	}
	if st, _ := ReadStatus(in.Root, rel); st.Present || len(st.Leftovers) != 0 {
		t.Fatalf("a failed install left %+v", st)
	}
	indexed := append(goodTree(rel, "new"), ent{name: "lib/modules/" + rel + "/modules.dep", body: "kernel/drivers/a.ko:\n"})
	b = writeBundle(t, top, "indexed.tar", makeTar(t, indexed))
	if _, err := in.Install(context.Background(), b); err != nil {
		t.Fatalf("an indexed bundle needs no depmod: %v", err)
	}
}

func TestInstallRefusesBadArguments(t *testing.T) {
	for _, tc := range []struct {
		name    string
		release string
		sha     string
		want    string
	}{
		{"a short digest is refused", rel, "abc", "64 hex"},
		{"a non-hex digest is refused", rel, strings.Repeat("z", 64), "not hex"},
		{"a release with a slash is refused", "../etc", strings.Repeat("a", 64), "invalid kernel release"},
		{"a release named like flint's backup is refused", rel + ".flint-old", strings.Repeat("a", 64), "invalid kernel release"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := &Installer{Root: t.TempDir(), Release: tc.release, Depmod: fakeDepmod}
			_, err := in.Install(context.Background(), Bundle{URL: "file:///nonexistent", SHA256: tc.sha})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// TestRecoverCompletesOrRollsBackEachInterruptedState builds, by hand, the
// file-system state each step of an install can be killed in and checks
// what Recover makes of it.
func TestRecoverCompletesOrRollsBackEachInterruptedState(t *testing.T) {
	type layout map[string]string // path under lib/modules → file content
	tree := func(prefix, flavour string, complete bool) layout {
		l := layout{prefix + "/kernel/a.ko": flavour}
		if complete {
			l[prefix+"/modules.dep"] = "kernel/a.ko:\n"
			l[prefix+"/"+RecordName] = `{"sha256":"` + strings.Repeat("a", 64) + `"}`
		}
		return l
	}
	merge := func(ls ...layout) layout {
		out := layout{}
		for _, l := range ls {
			for k, v := range l {
				out[k] = v
			}
		}
		return out
	}
	stg := "." + rel + stagingTag + "123/lib/modules/" + rel
	for _, tc := range []struct {
		name    string
		state   layout
		want    string // flavour of the live tree afterwards
		wantOld bool
	}{
		{"a partial staging tree is removed", merge(tree(rel, "old", true), tree(stg, "new", false)), "old", false},
		{"a complete but unswapped staging tree is removed", merge(tree(rel, "old", true), tree(stg, "new", true)), "old", false},
		{"a retired mark on the live tree is dropped", merge(tree(rel, "old", true), layout{rel + "/" + retiredName: ""}), "old", false},
		{"after the exchange the retired tree is kept then removed", merge(tree(rel, "new", true), tree(stg, "old", true), layout{stg + "/" + retiredName: ""}), "new", false},
		{"a kept old tree beside a complete new one is removed", merge(tree(rel, "new", true), tree(rel+oldSuffix, "old", true)), "new", false},
		{"a kept old tree without a live tree is put back", merge(tree(rel+oldSuffix, "old", true), layout{rel + oldSuffix + "/" + retiredName: ""}), "old", false},
		{"an incomplete live tree is rolled back to the kept one", merge(tree(rel, "new", false), tree(rel+oldSuffix, "old", true)), "old", false},
		{"trash is emptied", merge(tree(rel, "old", true), tree("."+rel+oldSuffix+trashTag+"9/t", "x", false)), "old", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "lib", "modules")
			for p, c := range tc.state {
				os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
				if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := Recover(dir, rel); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(dir, rel, "kernel/a.ko"))
			if err != nil || string(got) != tc.want {
				t.Fatalf("live tree is %q (%v), want %q", got, err, tc.want)
			}
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if e.Name() != rel {
					t.Errorf("left behind: %s", e.Name())
				}
			}
			if _, err := os.Lstat(filepath.Join(dir, rel, retiredName)); err == nil {
				t.Error("the live tree keeps the retired mark")
			}
		})
	}
}

func TestStatusReportsWhatIsInstalled(t *testing.T) {
	top := t.TempDir()
	root := filepath.Join(top, "root")
	st, err := ReadStatus(root, rel)
	if err != nil || st.Present || st.Installed("") {
		t.Fatalf("empty root: %+v %v", st, err)
	}
	b := writeBundle(t, top, "m.tar.gz", compress(t, FormatTarGz, makeTar(t, goodTree(rel, "new"))))
	in := &Installer{Root: root, Release: rel, Depmod: fakeDepmod}
	if _, err := in.Install(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	st, err = ReadStatus(root, rel)
	if err != nil || !st.Present || !st.Indexed || !st.Installed(b.SHA256) || st.Installed(strings.Repeat("0", 64)) {
		t.Fatalf("installed root: %+v %v", st, err)
	}
	if st.Record.URL != b.URL || st.Record.Files != 5 {
		t.Fatalf("record %+v", st.Record)
	}
}

func TestRecordedURLsCarryNoCredentials(t *testing.T) {
	for in, want := range map[string]string{
		"https://b.s3.amazonaws.com/k.tar.gz?X-Amz-Signature=secret": "https://b.s3.amazonaws.com/k.tar.gz",
		"https://user:pass@host/x.tar":                               "https://host/x.tar",
		"file:///srv/x.tar#frag":                                     "file:///srv/x.tar",
		"https://host/a@b/x.tar":                                     "https://host/a@b/x.tar",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAnAbsoluteLibSymlinkInAnImageStaysInsideTheImage(t *testing.T) {
	top := t.TempDir()
	root := filepath.Join(top, "root")
	os.MkdirAll(filepath.Join(root, "usr", "lib"), 0o755)
	// Merged /usr with an absolute link: followed naively it would be the
	// host's /usr/lib.
	if err := os.Symlink("/usr/lib", filepath.Join(root, "lib")); err != nil {
		t.Fatal(err)
	}
	_, err := os.Lstat(filepath.Join("/usr/lib/modules", rel))
	testenv.Need(t, err != nil, "the host must not have /usr/lib/modules/"+rel+" (the test release)")
	b := writeBundle(t, top, "m.tar.gz", compress(t, FormatTarGz, makeTar(t, goodTree(rel, "new"))))
	in := &Installer{Root: root, Release: rel, Depmod: fakeDepmod, NoSync: true}
	if _, err := in.Install(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "usr/lib/modules", rel, "modules.dep")); err != nil {
		t.Fatalf("not installed in the image's usr/lib: %v", err)
	}
	if _, err := os.Lstat(filepath.Join("/usr/lib/modules", rel)); err == nil {
		os.RemoveAll(filepath.Join("/usr/lib/modules", rel))
		t.Fatal("installed into the host's /usr/lib/modules")
	}
	st, err := ReadStatus(root, rel)
	if err != nil || !st.Installed(b.SHA256) {
		t.Fatalf("status through the link: %+v, %v", st, err)
	}
}

func TestConcurrentInstallsOfOneReleaseAreSerialised(t *testing.T) {
	top := t.TempDir()
	root := filepath.Join(top, "root")
	var bundles []Bundle
	for i, f := range []string{"a", "b", "c", "d"} {
		bundles = append(bundles, writeBundle(t, top, fmt.Sprint(i, ".tar.gz"), compress(t, FormatTarGz, makeTar(t, crashBundleTree(f, 30)))))
	}
	errs := make(chan error, len(bundles))
	for _, b := range bundles {
		go func() {
			in := &Installer{Root: root, Release: rel, Depmod: fakeDepmod, NoSync: true}
			_, err := in.Install(context.Background(), b)
			errs <- err
		}()
	}
	for range bundles {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	st, err := ReadStatus(root, rel)
	if err != nil || st.Old || len(st.Leftovers) != 0 || st.Record == nil {
		t.Fatalf("status %+v, %v", st, err)
	}
	// The tree is exactly the one its record names.
	var winner Bundle
	for _, b := range bundles {
		if b.SHA256 == st.Record.SHA256 {
			winner = b
		}
	}
	ref := filepath.Join(top, "ref")
	in := &Installer{Root: ref, Release: rel, Depmod: fakeDepmod, NoSync: true}
	if _, err := in.Install(context.Background(), winner); err != nil {
		t.Fatal(err)
	}
	got, _ := treeState(t, root)
	want, _ := treeState(t, ref)
	if d := diffSnapshots(want, got); d != "" {
		t.Fatalf("the tree mixes bundles:\n%s", d)
	}
}

// breakAtVerify makes the installed tree fail the check after the swap,
// as a disk that lost the record would.
func breakAtVerify(t *testing.T, root string) {
	t.Helper()
	old := stepHook
	stepHook = func(s string) {
		if s == "verify" {
			os.Remove(filepath.Join(root, "lib/modules", rel, "modules.dep"))
		}
	}
	t.Cleanup(func() { stepHook = old })
}

func TestAFirstInstallThatFailsItsCheckLeavesNoTreeLive(t *testing.T) {
	top := t.TempDir()
	root := filepath.Join(top, "root")
	in := &Installer{Root: root, Release: rel, Depmod: fakeDepmod}
	b := writeBundle(t, top, "b.tar.gz", compress(t, FormatTarGz, makeTar(t, goodTree(rel, "new"))))
	breakAtVerify(t, root)
	_, err := in.Install(context.Background(), b)
	if err == nil || !strings.Contains(err.Error(), "it was removed (there was no previous tree to restore)") || strings.Contains(err.Error(), "previous tree restored") {
		t.Fatalf("Install = %v, want an error saying the failed tree was removed", err)
	}
	if _, err := os.Lstat(filepath.Join(root, "lib/modules", rel)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the tree that failed its check is still live: %v", err)
	}
}

func TestAReplacementThatFailsItsCheckRestoresThePreviousTree(t *testing.T) {
	top := t.TempDir()
	root := filepath.Join(top, "root")
	in := &Installer{Root: root, Release: rel, Depmod: fakeDepmod}
	old := writeBundle(t, top, "old.tar.gz", compress(t, FormatTarGz, makeTar(t, goodTree(rel, "old"))))
	nw := writeBundle(t, top, "new.tar.gz", compress(t, FormatTarGz, makeTar(t, goodTree(rel, "new"))))
	if _, err := in.Install(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	breakAtVerify(t, root)
	_, err := in.Install(context.Background(), nw)
	if err == nil || !strings.Contains(err.Error(), "previous tree restored") {
		t.Fatalf("Install = %v", err)
	}
	st, err := ReadStatus(root, rel)
	if err != nil || !st.Installed(old.SHA256) {
		t.Fatalf("status after the failed replacement: %+v, %v; want the old bundle live", st, err)
	}
}
