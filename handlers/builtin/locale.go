package builtin

import (
	"context"
	"fmt"

	"github.com/flint-dev/flint/cloudconfig"
	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/internal/state"
	"github.com/flint-dev/flint/userdata"
)

// localeHandler is cloud-init's locale, once per instance, first of
// cloud-init's config stage: cloudconfig.Locale decides
// /etc/default/locale (as update-locale writes it) and the locale enabled
// in /etc/locale.gen, then locale-gen builds it. Like cloud-init it runs
// without a locale key too (the system's LANG, else en_US.UTF-8); unlike
// cloud-init, an image without locale-gen is then left as it is with a
// note (minimal images carry no locales), where a locale the user asked
// for fails the handler with one line.
var localeHandler = handlers.Builtin{Name: "locale", Frequency: state.PerInstance, Run: runLocale}

func runLocale(ctx context.Context, b *handlers.Boot) error {
	ud, err := b.UserData(ctx)
	if err != nil {
		return err
	}
	v, present := ud.Config["locale"]
	if !present {
		if _, err := b.Root.Stat("usr/sbin/locale-gen", rootfs.InRoot); err != nil {
			b.Note("no locale-gen in the image and no locale asked: locale left as it is")
			return nil
		}
	}
	in := cloudconfig.LocaleInput{Value: v, Present: present, ConfigFile: ud.Config["locale_configfile"]}
	for _, f := range []struct {
		dst  *[]byte
		path string
	}{{&in.Current, cloudconfig.LocaleDefaultFile}, {&in.LocaleGen, cloudconfig.LocaleGenFile}, {&in.Supported, "/usr/share/i18n/SUPPORTED"}} {
		if *f.dst, err = readOptional(b, f.path); err != nil {
			return err
		}
	}
	if cf, ok := in.ConfigFile.(string); ok && cf != "" && cf != cloudconfig.LocaleDefaultFile {
		if in.Current, err = readOptional(b, cf); err != nil {
			return err
		}
	}
	plan, err := cloudconfig.Locale(in)
	if err != nil {
		if _, serr := b.Root.Stat("usr/sbin/locale-gen", rootfs.InRoot); serr != nil && in.Supported == nil {
			// Not the locale's fault: the image carries no locales at all.
			return fmt.Errorf("locale %q: the image has no locales to build it (no locale-gen, no /usr/share/i18n/SUPPORTED: Debian's locales package); locale left as it is", userdata.PyStr(v))
		}
		return fmt.Errorf("%w; locale left as it is", err)
	}
	if plan == nil {
		b.Note("locale: false: left as it is")
		return nil
	}
	if len(plan.Files) == 0 {
		b.Note("locale %s already set", plan.Locale)
		return nil
	}
	b.Note("locale %s", plan.Locale)
	if err := writePlanFiles(b, plan.Files); err != nil {
		return fmt.Errorf("locale %s: %w", plan.Locale, err)
	}
	return runPlanCommands(ctx, b, plan.Commands)
}
