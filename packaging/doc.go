// Package packaging holds what ships beside the binary (systemd units,
// the default flint.yaml, the sshd drop-in, maintainer scripts) and builds
// the .deb and .rpm packages and the flint(8) man page from them with
// nfpm (packaging/cmd/mkpkg, run by make packages). Its tests check the
// files with the real tools (systemd-analyze, flint config check) and
// install, remove and purge the .deb with dpkg in a throwaway root.
package packaging
