// Command bundle-install installs one module bundle with the modules
// package, exactly as "flint modules install --bundle" does, and reports its
// own peak RSS; bench.sh times it against tar + depmod.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"syscall"

	"github.com/flint-dev/flint/modules"
)

func main() {
	root := flag.String("root", "", "target root")
	release := flag.String("release", "", "kernel release")
	bundle := flag.String("bundle", "", "bundle URL")
	sha := flag.String("sha256", "", "bundle digest")
	rss := flag.String("rss", "", "append this process's peak RSS (KiB, before depmod's) to this file")
	flag.Parse()
	in := &modules.Installer{Root: *root, Release: *release}
	var self int64
	depmod := func(ctx context.Context, base, release string) error {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		self = ru.Maxrss
		return modules.RunDepmod(ctx, base, release)
	}
	in.Depmod = depmod
	if _, err := in.Install(context.Background(), modules.Bundle{URL: *bundle, SHA256: *sha, Pinned: true}); err != nil {
		fmt.Fprintln(os.Stderr, "bundle-install:", err)
		os.Exit(1)
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	self = max(self, ru.Maxrss)
	if *rss != "" {
		f, err := os.OpenFile(*rss, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprintln(f, self)
			f.Close()
		}
	}
}
