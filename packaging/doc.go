// Package packaging holds what ships beside the binary: systemd units,
// the default flint.yaml, the sshd drop-in. Its tests check them with the
// real tools (systemd-analyze, flint config check).
package packaging
