package builtin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"strings"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/internal/accounts"
	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/internal/state"
	"github.com/flint-dev/flint/userdata"
)

// writeFilesHandler writes cloud-config `write_files` entries without `defer`,
// early and once per instance, as cloud-init's write_files module does.
var writeFilesHandler = handlers.Builtin{
	Name: "write-files", Frequency: state.PerInstance,
	Run: func(ctx context.Context, b *handlers.Boot) error { return runWriteFiles(ctx, b, false) },
}

func runWriteFiles(ctx context.Context, b *handlers.Boot, deferred bool) error {
	cc, err := b.CloudConfig(ctx)
	if err != nil {
		return err
	}
	var files []userdata.WriteFile
	for _, w := range cc.WriteFiles {
		if w.Defer == deferred {
			files = append(files, w)
		}
	}
	if len(files) == 0 {
		return nil
	}
	db, err := accounts.Read(b.Root)
	if err != nil {
		// Files without an owner can still be written; owned ones fail.
		b.Log.Warn("cannot read the root's accounts", "error", err)
		db = accounts.Parse(nil, nil)
	}
	f := failures{what: "files", total: len(files)}
	for _, w := range files {
		f.add(writeOneFile(ctx, b, db, w))
	}
	return f.err()
}

func writeOneFile(ctx context.Context, b *handlers.Boot, db *accounts.DB, w userdata.WriteFile) error {
	rel, err := writeFilePath(w.Path)
	if err != nil {
		return err
	}
	data, fetched, err := fetchWriteFileSource(ctx, b, w)
	if err != nil {
		return err
	}
	if !fetched {
		if data, err = w.Decoded(); err != nil {
			return fmt.Errorf("%s: %w", w.Path, err)
		}
	}
	owner, err := db.Owner(w.Owner)
	if err != nil {
		return fmt.Errorf("%s: %w", w.Path, err)
	}
	perm := w.Permissions
	zeroMode := perm.Perm() == 0
	if zeroMode {
		// rootfs reads a zero mode as "default" (0644): never widen what
		// the user narrowed.
		perm |= 0o600
	}
	verb := "wrote"
	if w.Append {
		verb = "appended to"
	}
	what := fmt.Sprintf("/%s (%d bytes, %#o, %s)", rel, len(data), perm.Perm(), w.Owner)
	if b.DryRun {
		b.Note("would have %s %s", verb, what)
		return nil
	}
	var appendRecord string
	if w.Append {
		// A failed handler runs again next boot; an append that already
		// happened must not happen twice. The record, written before the
		// file, holds the digest of the file as the append leaves it: a
		// crash between the two is told apart by comparing the file.
		sum := sha256.Sum256([]byte(rel + "\x00" + string(data)))
		if r, err := instancePath(b, "sem/write-files-appended/"+hex.EncodeToString(sum[:12])); err == nil {
			appendRecord = r
		}
		old, err := b.Root.ReadFile(rel, rootfs.InRoot)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if appendRecord != "" {
			if want, err := b.Root.ReadFile(appendRecord, rootfs.InRoot); err == nil {
				got := sha256.Sum256(old)
				if string(want) == hex.EncodeToString(got[:]) {
					b.Note("already appended to /%s", rel)
					return nil
				}
			}
		}
		data = append(old, data...)
		if appendRecord != "" {
			next := sha256.Sum256(data)
			if err := b.Root.WriteFile(appendRecord, []byte(hex.EncodeToString(next[:])), rootfs.WriteOptions{Perm: 0o600, MkdirPerm: 0o700}); err != nil {
				// Without the record it could be appended twice.
				b.Unrecorded(err)
				b.Partial("/%s not appended to: %s (%s); a boot that can write it appends once", rel, errNoRecord, handlers.SeeStateWarning)
				return nil
			}
		}
	}
	if owner.UID == os.Geteuid() && owner.GID == os.Getegid() {
		owner = rootfs.NoOwner
	}
	if err := b.Root.WriteFile(rel, data, rootfs.WriteOptions{Perm: perm, Owner: owner, MkdirPerm: 0o755}); err != nil {
		return err
	}
	if w.Permissions&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky) != 0 {
		verb += " (setuid/setgid/sticky bits not applied)"
	}
	if zeroMode {
		verb += " (mode 0 given, 0600 used)"
	}
	b.Note("%s %s", verb, what)
	return nil
}

// writeFilePath turns a write_files path into one below the root. Paths
// are taken as absolute (cloud-init runs with cwd /); a ".." element is
// refused rather than resolved, since it can only be a mistake or an
// attempt to leave the target tree.
func writeFilePath(p string) (string, error) {
	switch {
	case strings.TrimSpace(p) == "":
		return "", errors.New("write_files: empty path")
	case strings.ContainsRune(p, 0):
		return "", fmt.Errorf("write_files: path %q contains a NUL byte", p)
	case strings.HasSuffix(p, "/"):
		return "", fmt.Errorf("write_files: path %q names a directory, not a file", p)
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return "", fmt.Errorf("write_files: path %q has a \"..\" element; refused", p)
		}
	}
	rel := strings.TrimPrefix(path.Clean("/"+p), "/")
	if rel == "" || rel == "." {
		return "", fmt.Errorf("write_files: path %q names the root", p)
	}
	return rel, nil
}

// fetchWriteFileSource fetches an entry's source.uri as #include URLs are
// fetched (the user-data fetcher: http and https, size cap, retries),
// with its headers. A failed fetch falls back to the entry's content with
// a note, as cloud-init does; without content it fails the entry, which
// is not written (cloud-init would write an empty file). The URL is
// noted without credentials or query.
func fetchWriteFileSource(ctx context.Context, b *handlers.Boot, w userdata.WriteFile) (data []byte, fetched bool, err error) {
	if w.Source == nil {
		return nil, false, nil
	}
	shown := redactURL(w.Source.URI)
	if b.DryRun {
		b.Note("would fetch %s for %s", shown, w.Path)
		return nil, true, nil
	}
	fetcher := b.UserDataOptions.Fetcher
	if fetcher == nil {
		fetcher = &userdata.HTTPFetcher{MaxSize: b.UserDataOptions.MaxSize}
	}
	if hf, ok := fetcher.(userdata.HeaderFetcher); ok {
		data, err = hf.FetchHeaders(ctx, w.Source.URI, w.Source.Headers)
	} else {
		if len(w.Source.Headers) > 0 {
			b.Note("%s: source.headers not sent (the fetcher cannot)", w.Path)
		}
		data, err = fetcher.Fetch(ctx, w.Source.URI)
	}
	if err == nil {
		b.Note("fetched %s for %s", shown, w.Path)
		return data, true, nil
	}
	why := strings.ReplaceAll(err.Error(), w.Source.URI, shown)
	if !w.HasContent {
		return nil, false, fmt.Errorf("%s: source %s could not be fetched (%s) and the entry has no content to fall back to; not written", w.Path, shown, why)
	}
	b.Note("%s: source %s could not be fetched (%s); written from its content instead", w.Path, shown, why)
	b.Warn("write_files %s: source %s could not be fetched; written from its content instead", w.Path, shown)
	return nil, false, nil
}

// redactURL is a URL as logs may show it: no user information, no query
// (a signed URL's query is a credential).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(a URL that does not parse)"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "…"
	}
	u.Fragment = ""
	return u.String()
}
