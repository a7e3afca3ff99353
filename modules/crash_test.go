package modules

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The crash test re-executes the test binary: the child installs, the
// parent SIGKILLs it. These variables carry the child's orders.
const (
	envCrashChild  = "FLINT_MODULES_CRASH_CHILD"
	envCrashRoot   = "FLINT_MODULES_CRASH_ROOT"
	envCrashBundle = "FLINT_MODULES_CRASH_BUNDLE"
	// envCrashNoExchange makes the child use the two-rename fallback.
	envCrashNoExchange = "FLINT_MODULES_CRASH_NO_EXCHANGE"
)

// TestMain runs the crash child's body instead of the tests when
// TestInstallKilledAtAnyPointLeavesOldOrNewTree re-executes this binary.
func TestMain(m *testing.M) {
	if os.Getenv(envCrashChild) == "1" {
		os.Exit(runCrashChild())
	}
	os.Exit(m.Run())
}

// runCrashChild installs the bundle the parent named, announcing each step.
func runCrashChild() int {
	var b Bundle
	if err := json.Unmarshal([]byte(os.Getenv(envCrashBundle)), &b); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// Announce each step and linger a moment, so the parent can kill the
	// child exactly between two steps.
	stepHook = func(s string) {
		fmt.Println("step", s)
		time.Sleep(time.Millisecond)
	}
	if os.Getenv(envCrashNoExchange) == "1" {
		exchange = func(string, string) error { return syscall.EINVAL }
	}
	in := &Installer{Root: os.Getenv(envCrashRoot), Release: rel, Depmod: fakeDepmod, NoSync: true}
	if _, err := in.Install(context.Background(), b); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("step done")
	return 0
}

// crashSteps are the step names the installer announces, in order.
var crashSteps = []string{"stage", "fetch", "extract", "depmod", "sync", "retire", "exchange", "keep-old", "verify", "cleanup", "discard"}

// fallbackSteps are those of the two-rename fallback.
var fallbackSteps = []string{"extract", "retire", "exchange", "between", "verify", "cleanup", "discard"}

// treeState reads lib/modules/<rel> as a comparable description; the
// record is reduced to its digest (it holds the install time) and the
// retired mark ignored (it only matters beside a staging directory).
func treeState(t *testing.T, root string) (map[string]string, string) {
	t.Helper()
	tree := filepath.Join(root, "lib", "modules", rel)
	if _, err := os.Lstat(tree); err != nil {
		return nil, ""
	}
	s := snapshot(t, tree)
	delete(s, RecordName)
	delete(s, retiredName)
	rec, _ := ReadRecord(filepath.Join(root, "lib", "modules"), rel)
	return s, rec.SHA256
}

func crashBundleTree(flavour string, files int) []ent {
	ents := goodTree(rel, flavour)
	for i := range files {
		ents = append(ents, ent{
			name: fmt.Sprintf("lib/modules/%s/kernel/extra/m%04d.ko", rel, i),
			body: strings.Repeat(fmt.Sprintf("%s-%d;", flavour, i), 400),
		})
	}
	return ents
}

// TestInstallKilledAtAnyPointLeavesOldOrNewTree kills an install with
// SIGKILL, either right at one of its steps or after a random delay, and
// checks that lib/modules/<release> is then exactly the old tree or exactly
// the complete new one, and that the next install completes and leaves no
// debris. A quarter of the trials use the two-rename fallback for
// filesystems without RENAME_EXCHANGE, checked after Recover.
func TestInstallKilledAtAnyPointLeavesOldOrNewTree(t *testing.T) {
	const trials = 60
	top := t.TempDir()
	oldB := writeBundle(t, top, "old.tar.gz", compress(t, FormatTarGz, makeTar(t, crashBundleTree("old", 20))))
	newB := writeBundle(t, top, "new.tar.zst", compress(t, FormatTarZst, makeTar(t, crashBundleTree("new", 80))))
	newJSON, _ := json.Marshal(newB)

	// Reference trees and the time a whole child run takes.
	refRoot := filepath.Join(top, "ref")
	in := &Installer{Root: refRoot, Release: rel, Depmod: fakeDepmod, NoSync: true}
	if _, err := in.Install(context.Background(), oldB); err != nil {
		t.Fatal(err)
	}
	oldTree, oldSHA := treeState(t, refRoot)
	start := time.Now()
	if out, err := crashChild(refRoot, newJSON).CombinedOutput(); err != nil {
		t.Fatalf("child install: %v\n%s", err, out)
	}
	full := time.Since(start)
	t.Logf("a whole child install takes %v", full)
	newTree, newSHA := treeState(t, refRoot)
	if len(newTree) == 0 || newSHA != newB.SHA256 || oldSHA != oldB.SHA256 {
		t.Fatalf("reference install did not produce the new tree")
	}

	outcomes := map[string]int{}
	for i := range trials {
		root := filepath.Join(top, fmt.Sprint("t", i))
		in := &Installer{Root: root, Release: rel, Depmod: fakeDepmod, NoSync: true}
		if _, err := in.Install(context.Background(), oldB); err != nil {
			t.Fatal(err)
		}
		cmd := crashChild(root, newJSON)
		// Every fourth trial takes the fallback for filesystems without
		// RENAME_EXCHANGE, where the live tree is briefly absent: there
		// the guarantee holds once Recover (or the next run) has run.
		fallback := i%4 == 3
		if fallback {
			cmd.Env = append(cmd.Env, envCrashNoExchange+"=1")
		}
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var at string
		if fallback {
			at = fallbackSteps[rand.N(len(fallbackSteps))]
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if sc.Text() == "step "+at {
					cmd.Process.Signal(syscall.SIGKILL)
					break
				}
			}
			at = "fallback " + at
		} else if i%2 == 0 {
			at = crashSteps[rand.N(len(crashSteps))]
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if sc.Text() == "step "+at {
					cmd.Process.Signal(syscall.SIGKILL)
					break
				}
			}
		} else {
			d := rand.N(full + time.Millisecond)
			at = "after " + d.Round(time.Millisecond).String()
			time.Sleep(d)
			cmd.Process.Signal(syscall.SIGKILL)
		}
		go func() { bufio.NewScanner(stdout).Scan() }()
		cmd.Wait()

		if fallback {
			if err := Recover(ModulesDir(root), rel); err != nil {
				t.Fatalf("trial %d: recover: %v", i, err)
			}
		}
		got, sha := treeState(t, root)
		switch {
		case sha == oldSHA && equalState(got, oldTree):
			outcomes["old"]++
		case sha == newSHA && equalState(got, newTree):
			outcomes["new"]++
		default:
			t.Fatalf("trial %d (killed at %s): lib/modules/%s is neither the old nor the new tree: record %q, diff from new:\n%s",
				i, at, rel, sha, diffSnapshots(newTree, got))
		}

		if i%3 == 0 {
			// Recover alone must also leave a complete tree and no debris.
			if err := Recover(ModulesDir(root), rel); err != nil {
				t.Fatalf("trial %d: recover: %v", i, err)
			}
			if got, sha := treeState(t, root); !(sha == oldSHA && equalState(got, oldTree)) && !(sha == newSHA && equalState(got, newTree)) {
				t.Fatalf("trial %d (killed at %s): after Recover the tree is partial", i, at)
			}
		}
		if _, err := in.Install(context.Background(), newB); err != nil {
			t.Fatalf("trial %d (killed at %s): the next install failed: %v", i, at, err)
		}
		got, sha = treeState(t, root)
		if sha != newSHA || !equalState(got, newTree) {
			t.Fatalf("trial %d (killed at %s): the next install did not complete the new tree", i, at)
		}
		st, _ := ReadStatus(root, rel)
		if st.Old || len(st.Leftovers) != 0 {
			t.Fatalf("trial %d (killed at %s): debris after the next install: %+v", i, at, st)
		}
		os.RemoveAll(root)
	}
	t.Logf("outcomes after SIGKILL: %v", outcomes)
	if outcomes["old"] == 0 || outcomes["new"] == 0 {
		t.Errorf("kills never landed on both sides of the swap: %v", outcomes)
	}
}

func crashChild(root string, bundleJSON []byte) *exec.Cmd {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), envCrashChild+"=1", envCrashRoot+"="+root, envCrashBundle+"="+string(bundleJSON))
	return cmd
}

func equalState(a, b map[string]string) bool {
	return len(a) > 0 && diffSnapshots(a, b) == ""
}
