// Package modules owns kernel-module bundles: it detects the running kernel
// (uname release and machine, kernel-id and ramdisk-id from metadata), resolves
// the bundle that matches it (a signed or checksummed JSON manifest, or a URL
// template), downloads it as a stream with retries and Range resume while
// hashing it, decompresses it (.tar, .tar.gz, .tar.xz, .tar.zst) and extracts it
// into a staging directory next to /lib/modules/<release> with every entry
// checked (see CheckEntry). Only when the digest matches and depmod has built
// the indexes does the new tree replace the old one, by one atomic rename; the
// previous tree is kept as <release>.flint-old until the new one is verified, and
// a run interrupted at any point is completed or rolled back by the next one
// (see Recover). It finally loads the configured modules in dependency order.
//
// The package touches nothing outside <root>/lib/modules. It signs s3://
// requests itself (SigV4, sigv4.go); metadata access (Metadata), the
// instance-role credentials (CredentialsProvider) and the decision to run at
// all are the caller's: the kernel-modules handler and the "flint modules"
// command wire them.
package modules
