package modules

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestEnsureInstallsOnceThenLeavesTheTreeAlone(t *testing.T) {
	top := t.TempDir()
	root := filepath.Join(top, "root")
	body := compress(t, FormatTarXz, makeTar(t, goodTree(rel, "new")))
	bundle := filepath.Join(top, "aki-7.tar.xz")
	os.WriteFile(bundle, body, 0o644)
	o := Options{
		Root:     root,
		Release:  rel,
		Config:   Config{URL: "file://" + top + "/{kernel_id}.tar.xz", SHA256: digest(body)},
		Metadata: fakeMetadata{"meta-data/kernel-id": "aki-7"},
		Depmod:   fakeDepmod,
	}
	out, err := Ensure(context.Background(), o)
	if err != nil || out.Action != ActionInstalled || out.Kernel.KernelID != "aki-7" || out.Record.SHA256 != digest(body) {
		t.Fatalf("first boot: %+v, %v", out, err)
	}
	os.Remove(bundle) // a second boot must not need it
	out, err = Ensure(context.Background(), o)
	if err != nil || out.Action != ActionNone {
		t.Fatalf("second boot: %+v, %v", out, err)
	}
	// Without Force a changed configuration is not even looked at; with
	// it the new digest is resolved and installed.
	body2 := compress(t, FormatTarXz, makeTar(t, goodTree(rel, "newer")))
	os.WriteFile(bundle, body2, 0o644)
	o.Config.SHA256 = digest(body2)
	if out, err := Ensure(context.Background(), o); err != nil || out.Action != ActionNone {
		t.Fatalf("third boot: %+v, %v", out, err)
	}
	o.Force = true
	out, err = Ensure(context.Background(), o)
	if err != nil || out.Action != ActionInstalled || out.Record.SHA256 != digest(body2) {
		t.Fatalf("forced: %+v, %v", out, err)
	}
}

func TestEnsureLeavesAnImageTreeAloneAndNamesAMissingConfig(t *testing.T) {
	root := t.TempDir()
	out, err := Ensure(context.Background(), Options{Root: root, Release: rel})
	if !errors.Is(err, ErrNoBundle) || out.Action != ActionNotConfigured {
		t.Fatalf("missing tree, no config: %+v, %v", out, err)
	}
	tree := filepath.Join(root, "lib", "modules", rel)
	os.MkdirAll(tree, 0o755)
	os.WriteFile(filepath.Join(tree, "modules.dep"), nil, 0o644)
	out, err = Ensure(context.Background(), Options{Root: root, Release: rel, Config: Config{URL: "https://127.0.0.1:1/never"}})
	if err != nil || out.Action != ActionNone || out.Record != nil {
		t.Fatalf("image tree: %+v, %v", out, err)
	}
}

func TestEnsureOfACompleteTreeReadsNoMetadata(t *testing.T) {
	top := t.TempDir()
	root := filepath.Join(top, "root")
	body := compress(t, FormatTarXz, makeTar(t, goodTree(rel, "new")))
	bundle := filepath.Join(top, "b.tar.xz")
	os.WriteFile(bundle, body, 0o644)
	o := Options{Root: root, Release: rel, Depmod: fakeDepmod,
		Config: Config{URL: "file://" + bundle, SHA256: digest(body)}}
	if out, err := Ensure(context.Background(), o); err != nil || out.Action != ActionInstalled {
		t.Fatalf("install: %+v, %v", out, err)
	}
	// Every metadata read now fails: a boot with a complete tree must not
	// care.
	o.Metadata = fakeMetadata{"meta-data/kernel-id": "!fail", "meta-data/ramdisk-id": "!fail", "meta-data/placement/region": "!fail"}
	if out, err := Ensure(context.Background(), o); err != nil || out.Action != ActionNone {
		t.Fatalf("a complete tree with IMDS failing: %+v, %v", out, err)
	}
}
