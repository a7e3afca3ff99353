package userdata

import (
	"context"
	"reflect"
	"strings"
	"testing"
)

func TestYumReposAndSSHImportIDAreHandledAndShown(t *testing.T) {
	doc := "#cloud-config\nssh_import_id: [gh:alice]\nusers:\n  - default\n  - {name: dev, ssh_import_id: [lp:dev]}\n" +
		"yum_repos:\n  epel: {baseurl: http://e.example/}\nyum_repo_dir: /etc/yum.repos.d\nkeyboard: {layout: us}\n"
	in, err := Inspect(context.Background(), []byte(doc), Options{NoInclude: true})
	if err != nil {
		t.Fatal(err)
	}
	var unhandled string
	for _, w := range in.Warnings {
		if strings.Contains(w, "not handled by flint") {
			unhandled = w
		}
	}
	if !strings.HasSuffix(unhandled, ": keyboard") {
		t.Errorf("warning %q, want keyboard alone reported as not handled", unhandled)
	}
	if got := in.CloudConfig["ssh_import_id"]; !reflect.DeepEqual(got, []any{"gh:alice"}) {
		t.Errorf("ssh_import_id shown as %v", got)
	}
	if u := in.CloudConfig["users"].([]any)[1].(map[string]any); !reflect.DeepEqual(u["ssh_import_id"], []any{"lp:dev"}) {
		t.Errorf("users[1] shown as %v", u)
	}
	if in.CloudConfig["yum_repos"] == nil || in.CloudConfig["yum_repo_dir"] != "/etc/yum.repos.d" {
		t.Errorf("yum keys shown as %v", in.CloudConfig)
	}
}
