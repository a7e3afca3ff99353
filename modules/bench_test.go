package modules

import (
	"context"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// BenchmarkInstallRealBundle times a whole install of the Debian cloud
// kernel's modules (digest, decompression, extraction, syncfs, rename,
// depmod) and, in the same run, the manual way: tar -x of the same file
// followed by depmod -b. The http cases fetch over loopback HTTP against
// curl | tar. Peak RSS is in bench/bench.sh, which runs each as a process.
//
//	go test -run '^$' -bench InstallRealBundle -benchtime 5x ./modules/
func BenchmarkInstallRealBundle(b *testing.B) {
	k := needRealKernel(b)
	depmod := lookTool(b, "depmod")
	srv := serveDir(b, k.dir)
	for _, c := range []struct{ ext, tarFlag string }{{"tar.gz", "-xzf"}, {"tar.zst", "--zstd -xf"}} {
		bundle := k.bundle(b, c.ext)
		b.Run(c.ext+"/flint", func(b *testing.B) {
			for b.Loop() {
				root := b.TempDir()
				in := &Installer{Root: root, Release: k.release}
				if _, err := in.Install(context.Background(), bundle); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.ext+"/tar+depmod", func(b *testing.B) {
			for b.Loop() {
				root := b.TempDir()
				sh(b, "tar "+c.tarFlag+" "+filepath.Join(k.dir, "modules."+c.ext)+" -C "+root+" && "+depmod+" -b "+root+" "+k.release)
			}
		})
		httpBundle := bundle
		httpBundle.URL, httpBundle.Pinned = srv+"/modules."+c.ext, true
		b.Run(c.ext+"/http/flint", func(b *testing.B) {
			for b.Loop() {
				root := b.TempDir()
				in := &Installer{Root: root, Release: k.release}
				if _, err := in.Install(context.Background(), httpBundle); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.ext+"/http/curl|tar+depmod", func(b *testing.B) {
			for b.Loop() {
				root := b.TempDir()
				sh(b, "curl -fsS "+httpBundle.URL+" | tar "+c.tarFlag+" - -C "+root+" && "+depmod+" -b "+root+" "+k.release)
			}
		})
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	b.Logf("peak RSS of the benchmark process: %d KiB", ru.Maxrss)
}

func lookTool(b *testing.B, name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		b.Skipf("needs %s", name)
	}
	return p
}

func sh(b *testing.B, cmd string) {
	if out, err := exec.Command("sh", "-c", cmd).CombinedOutput(); err != nil {
		b.Fatalf("%s: %v: %s", cmd, err, out)
	}
}

// serveDir serves dir over HTTP on 127.0.0.1 only.
func serveDir(b *testing.B, dir string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir))}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}
