package builtin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/flint-dev/flint/cloudconfig"
	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/internal/state"
)

// phoneHomeHandler is cloud-init's phone_home, once per instance, in the
// final stage after the scripts and before the final message: the POST
// cloudconfig.PhoneHome plans (instance id, host name, FQDN and the host
// public keys, "N/A" for what is missing) is sent up to `tries` times,
// 3 s apart. It is a live action: without --live on another root it is
// planned. A POST that never succeeds fails the handler with one line
// (cloud-init logs it and goes on), so a later boot tries again. A POST
// is sent at most once per instance: its record is made durable before
// it (step.begin), so no crash or unrecorded run sends it twice, and
// without the record it is not sent. The URL is logged without
// credentials or query.
var phoneHomeHandler = handlers.Builtin{Name: "phone-home", Frequency: state.PerInstance, Run: runPhoneHome}

// phoneHomeWait is the pause between tries (cloud-init's sec_between),
// and phoneHomeTimeout bounds one try.
var phoneHomeWait, phoneHomeTimeout = 3 * time.Second, 10 * time.Second

func runPhoneHome(ctx context.Context, b *handlers.Boot) error {
	ud, err := b.UserData(ctx)
	if err != nil {
		return err
	}
	v, ok := ud.Config["phone_home"]
	if !ok {
		return nil
	}
	facts := cloudconfig.PhoneHomeFacts{InstanceID: b.InstanceID, HostKeys: map[string]string{}}
	if h, err := b.Metadata.Get(ctx, "meta-data/local-hostname"); err == nil {
		facts.FQDN = strings.TrimSpace(string(h))
		facts.Hostname, _, _ = strings.Cut(facts.FQDN, ".")
	}
	for field, p := range cloudconfig.PhoneHomeHostKeys {
		if k, err := readOptional(b, p); err == nil && k != nil {
			facts.HostKeys[field] = string(k)
		}
	}
	plan, err := cloudconfig.PhoneHome(v, facts)
	if err != nil || plan == nil {
		return err
	}
	shown := redactURL(plan.URL)
	if len(plan.Missing) > 0 {
		b.Note("sent as N/A: %s", strings.Join(plan.Missing, ", "))
	}
	if b.DryRun || !b.Live {
		b.Note("would post %s to %s (%d tries)", strings.Join(sortedFormKeys(plan), ", "), shown, plan.Tries)
		if b.DryRun {
			return nil
		}
		return fmt.Errorf("post to %s: %w", shown, handlers.ErrNotLive)
	}
	// A POST that arrived must not arrive again when this handler runs
	// again (a later failure, a disk that cannot record it).
	post := step{key: "phone-home", what: "phone_home's POST to " + shown}
	if !post.beginOrWait(b) {
		return nil
	}
	body := plan.Form.Encode()
	var last error
	tries := max(plan.Tries, 1)
	for i := 0; i < tries; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				post.forget(b)
				return ctx.Err()
			case <-time.After(phoneHomeWait):
			}
		}
		if last = postForm(ctx, plan.URL, body); last == nil {
			b.Note("posted to %s", shown)
			return nil
		}
	}
	// Refused every time: a later boot tries again.
	post.forget(b)
	return fmt.Errorf("phone_home: posting to %s failed %d times (last: %s)", shown, tries, strings.ReplaceAll(last.Error(), plan.URL, shown))
}

// postForm sends one form POST; any status but 2xx is an error.
func postForm(ctx context.Context, u, body string) error {
	ctx, cancel := context.WithTimeout(ctx, phoneHomeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) && ue.Unwrap() != nil {
			return ue.Unwrap()
		}
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP status %d", resp.StatusCode)
	}
	return nil
}

func sortedFormKeys(p *cloudconfig.PhoneHomePlan) []string {
	var out []string
	for k := range p.Form {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
