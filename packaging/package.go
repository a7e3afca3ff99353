package packaging

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers the rpm packager
)

// Paths of what the packages install.
const (
	BinPath     = "/usr/bin/flint"
	UnitDir     = "/usr/lib/systemd/system"
	ConfigPath  = "/etc/flint/flint.yaml"
	SSHDDropIn  = "/etc/ssh/sshd_config.d/99-flint.conf"
	ManPagePath = "/usr/share/man/man8/flint.8.gz"
	DocDir      = "/usr/share/doc/flint"
)

// Units are the systemd units shipped, by file name in packaging/systemd.
var Units = []string{"flint.service", "flint-local.service", "flint-host-keys.service", "flint-network.service", "flint-events.service"}

// Build describes one package to build.
type Build struct {
	// Format is "deb" or "rpm".
	Format string
	// Version is the upstream version (digits first, no "-").
	Version string
	// Release is the rpm release ("1"); a .deb is a native package and has none.
	Release string
	// Arch is Go's name of the architecture: amd64 or arm64.
	Arch string
	// Binary is the flint binary built for Arch.
	Binary string
	// Src is the packaging directory (units, flint.yaml, sshd drop-in, scripts).
	Src string
	// Gen holds generated files: flint.8.gz, copyright, changelog.gz.
	Gen string
	// MTime is stamped on every file, for reproducible packages.
	MTime time.Time
}

// rpmArch is the rpm name of a Go architecture.
var rpmArch = map[string]string{"amd64": "x86_64", "arm64": "aarch64"}

// FileName is the conventional name of the package file:
// flint_VERSION_ARCH.deb, flint-VERSION-RELEASE.ARCH.rpm.
func (b Build) FileName() string {
	if b.Format == "rpm" {
		return fmt.Sprintf("flint-%s-%s.%s.rpm", b.Version, b.Release, rpmArch[b.Arch])
	}
	return fmt.Sprintf("flint_%s_%s.deb", b.Version, b.Arch)
}

// Info is the nfpm description of the package.
func (b Build) Info() *nfpm.Info {
	file := func(src, dst string, mode os.FileMode, typ string) *files.Content {
		return &files.Content{Source: src, Destination: dst, Type: typ,
			FileInfo: &files.ContentFileInfo{Mode: mode, MTime: b.MTime, Owner: "root", Group: "root"}}
	}
	contents := files.Contents{
		file(b.Binary, BinPath, 0o755, ""),
		file(filepath.Join(b.Src, "flint.yaml"), ConfigPath, 0o644, files.TypeConfigNoReplace),
		file(filepath.Join(b.Src, "sshd", "flint.conf"), SSHDDropIn, 0o644, files.TypeConfigNoReplace),
		file(filepath.Join(b.Gen, "flint.8.gz"), ManPagePath, 0o644, ""),
		file(filepath.Join(b.Gen, "copyright"), DocDir+"/copyright", 0o644, ""),
	}
	for _, u := range Units {
		contents = append(contents, file(filepath.Join(b.Src, "systemd", u), UnitDir+"/"+u, 0o644, ""))
	}
	if b.Format == "deb" {
		// A native package's changelog; rpm keeps its own in the header.
		contents = append(contents, file(filepath.Join(b.Gen, "changelog.gz"), DocDir+"/changelog.gz", 0o644, ""))
		contents = append(contents, file(filepath.Join(b.Src, "lintian-overrides"), "/usr/share/lintian/overrides/flint", 0o644, ""))
	}
	info := &nfpm.Info{
		Name:          "flint",
		Arch:          b.Arch,
		Platform:      "linux",
		Version:       b.Version,
		VersionSchema: "none",
		Release:       b.Release,
		Section:       "admin",
		Priority:      "optional",
		Maintainer:    "flint maintainers <maintainers@flint-dev.invalid>",
		Homepage:      "https://github.com/flint-dev/flint",
		Description: "first-boot provisioning for EC2-like instances\n" +
			"flint is one static binary that provisions a cloud instance at its first\n" +
			"boot from the instance metadata service: users, SSH keys, host keys,\n" +
			"network interfaces, kernel modules and cloud-init compatible user-data.\n" +
			"It also answers metadata queries (flint query, ec2-metadata).",
		MTime: b.MTime,
		Overridables: nfpm.Overridables{
			Contents: contents,
			Scripts: nfpm.Scripts{
				PostInstall: filepath.Join(b.Src, "scripts", "postinst"),
				PostRemove:  filepath.Join(b.Src, "scripts", "postrm"),
			},
			RPM: nfpm.RPM{Summary: "first-boot provisioning for EC2-like instances", Group: "System Environment/Base"},
		},
	}
	if b.Format == "rpm" {
		info.License = "LicenseRef-flint"
	}
	return nfpm.WithDefaults(info)
}

// Write builds the package and writes it to w.
func (b Build) Write(w io.Writer) error {
	p, err := nfpm.Get(b.Format)
	if err != nil {
		return err
	}
	info := b.Info()
	if err := nfpm.PrepareForPackager(info, b.Format); err != nil {
		return fmt.Errorf("%s: %w", b.FileName(), err)
	}
	if err := p.Package(info, w); err != nil {
		return fmt.Errorf("%s: %w", b.FileName(), err)
	}
	return nil
}
