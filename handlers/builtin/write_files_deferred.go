package builtin

import (
	"context"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/internal/state"
)

// writeFilesDeferredHandler writes the write_files entries with
// `defer: true`, after users and packages exist (cloud-init's
// write_files_deferred), so they can be owned by a user created from
// cloud-config or land in a package's directory.
var writeFilesDeferredHandler = handlers.Builtin{
	Name: "write-files-deferred", Frequency: state.PerInstance,
	Run: func(ctx context.Context, b *handlers.Boot) error { return runWriteFiles(ctx, b, true) },
}
