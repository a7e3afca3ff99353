package builtin

import (
	"context"
	"fmt"
	"strings"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/internal/state"
)

// timezoneHandler applies cloud-config `timezone` once per instance, as
// cloud-init's Debian distro does: etc/timezone holds the name and
// etc/localtime links to its zoneinfo file. The zone must exist in the
// root's usr/share/zoneinfo, so a typo is an error rather than a clock in
// UTC that looks configured.
var timezoneHandler = handlers.Builtin{Name: "timezone", Frequency: state.PerInstance, Run: runTimezone}

const zoneinfoDir = "usr/share/zoneinfo"

// validTimezoneName reports whether tz can name a file below zoneinfo:
// relative, no "." or ".." elements, a conservative character set.
func validTimezoneName(tz string) bool {
	if tz == "" || len(tz) > 255 || strings.HasPrefix(tz, "/") || strings.HasSuffix(tz, "/") {
		return false
	}
	for _, el := range strings.Split(tz, "/") {
		if el == "" || el == "." || el == ".." {
			return false
		}
	}
	for _, r := range tz {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/_+-.", r)) {
			return false
		}
	}
	return true
}

func runTimezone(ctx context.Context, b *handlers.Boot) error {
	cc, err := b.CloudConfig(ctx)
	if err != nil {
		return err
	}
	tz := strings.TrimSpace(cc.Timezone)
	if tz == "" {
		return nil
	}
	if !validTimezoneName(tz) {
		return fmt.Errorf("timezone %q is not a time zone name (e.g. Europe/Paris)", tz)
	}
	zone := zoneinfoDir + "/" + tz
	if fi, err := b.Root.Stat(zone, rootfs.InRoot); err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("timezone %q: no such zone in %s (is tzdata installed in the image?)", tz, b.Root.Path(zoneinfoDir))
	}
	b.Note("time zone %s", tz)
	if b.DryRun {
		return nil
	}
	if err := b.Root.WriteFile("etc/timezone", []byte(tz+"\n"), rootfs.WriteOptions{Perm: 0o644, MkdirPerm: 0o755}); err != nil {
		return err
	}
	return b.Root.Symlink("/"+zone, "etc/localtime")
}
