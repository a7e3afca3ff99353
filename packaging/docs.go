package packaging

import (
	"fmt"
	"time"
)

// Copyright is the package's copyright file (machine-readable format).
const Copyright = `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: flint
Upstream-Contact: flint maintainers <maintainers@flint-dev.invalid>
Source: https://github.com/flint-dev/flint

Files: *
Copyright: 2026 the flint authors
License: LicenseRef-flint
 The flint authors have not yet published a license for flint. Until they
 do, no rights beyond those granted by law are given.
`

// Changelog is the native package's changelog for one build.
func Changelog(version string, when time.Time) string {
	return fmt.Sprintf("flint (%s) unstable; urgency=medium\n\n  * Built from flint %s.\n\n -- flint maintainers <maintainers@flint-dev.invalid>  %s\n",
		version, version, when.UTC().Format("Mon, 02 Jan 2006 15:04:05 -0700"))
}
