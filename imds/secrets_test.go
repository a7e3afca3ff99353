package imds

import (
	"strings"
	"testing"
)

const roleDoc = `{
  "Code" : "Success",
  "LastUpdated" : "2026-11-25T08:12:09Z",
  "Type" : "AWS-HMAC",
  "AccessKeyId" : "ASIAEXAMPLEKEYID0001",
  "SecretAccessKey" : "exampleSecretKeyDoNotUse0000000000000000",
  "Token" : "exampleSessionToken\"DoNotUse",
  "Expiration" : "2026-11-25T14:40:00Z"
}`

func TestSecretPathNamesCredentialDocumentsOnly(t *testing.T) {
	for path, want := range map[string]bool{
		"meta-data/iam/security-credentials/web-role":                             true,
		"/latest/meta-data/iam/security-credentials/web-role":                     true,
		"/2021-01-03/meta-data/iam/security-credentials/web-role":                 true,
		"meta-data/identity-credentials/ec2/security-credentials/ec2-instance":    true,
		"meta-data/iam/security-credentials/":                                     false,
		"meta-data/iam/info":                                                      false,
		"meta-data/identity-credentials/ec2/info":                                 false,
		"meta-data/instance-id":                                                   false,
		"dynamic/instance-identity/document":                                      false,
		"user-data":                                                               false,
		"meta-data/public-keys/0/openssh-key":                                     false,
		"meta-data/identity-credentials/ec2/security-credentials/":                false,
		"/latest/meta-data/iam/security-credentials/web-role/../../instance-type": true, // the server resolves it; redacting more is safe
	} {
		if got := SecretPath(path); got != want {
			t.Errorf("SecretPath(%q) = %v, want %v", path, got, want)
		}
	}
}

func TestRedactValueHidesTheSecretKeyAndTokenAndKeepsTheRest(t *testing.T) {
	got := string(RedactValue("meta-data/iam/security-credentials/web-role", []byte(roleDoc)))
	for _, secret := range []string{"exampleSecretKeyDoNotUse", "exampleSessionToken", "DoNotUse"} {
		if strings.Contains(got, secret) {
			t.Errorf("redacted document still holds %q:\n%s", secret, got)
		}
	}
	want := strings.NewReplacer(
		`"exampleSecretKeyDoNotUse0000000000000000"`, `"<redacted>"`,
		`"exampleSessionToken\"DoNotUse"`, `"<redacted>"`,
	).Replace(roleDoc)
	if got != want {
		t.Errorf("layout changed:\n got %s\nwant %s", got, want)
	}
}

func TestRedactValueReplacesACredentialValueOfAnotherShapeWhole(t *testing.T) {
	for _, v := range []string{"not json at all", `{"Token": 12}`, `{"Token": "unterminated`, `["SecretAccessKey"]`} {
		if got := string(RedactValue("meta-data/iam/security-credentials/r", []byte(v))); got != Redacted {
			t.Errorf("RedactValue(%q) = %q, want %q", v, got, Redacted)
		}
	}
}

func TestRedactValueLeavesOtherPathsAlone(t *testing.T) {
	v := []byte(`{"Token" : "visible"}`)
	if got := RedactValue("dynamic/instance-identity/document", v); string(got) != string(v) {
		t.Errorf("got %q", got)
	}
}
