package modules

import (
	"context"
	"os"
	"strings"
)

// The S3 side of the configuration follows the AWS SDKs, so an instance
// set up for the AWS CLI needs nothing more for flint: the endpoint from
// AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL (unless
// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true), then modules.s3_endpoint; the
// region from modules.s3_region, then AWS_REGION / AWS_DEFAULT_REGION,
// then the instance's; credentials from the environment, then the
// instance role.

// S3Endpoint returns the S3 endpoint to use given the configured one; ""
// means AWS itself (virtual-hosted https://<bucket>.s3.<region>.amazonaws.com).
func S3Endpoint(configured string) string {
	if !strings.EqualFold(os.Getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"), "true") {
		for _, v := range []string{"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"} {
			if e := strings.TrimSpace(os.Getenv(v)); e != "" {
				return e
			}
		}
	}
	return configured
}

// regionFromEnv is the SDKs' region variable.
func regionFromEnv() string {
	if r := os.Getenv("AWS_REGION"); r != "" {
		return r
	}
	return os.Getenv("AWS_DEFAULT_REGION")
}

// DefaultCredentials is the SDKs' order: AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) when set, else the
// instance role read from md (nil md: no credentials, unsigned requests).
func DefaultCredentials(md Metadata) CredentialsProvider {
	id, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if id != "" && secret != "" {
		c := Credentials{AccessKeyID: id, SecretAccessKey: secret, SessionToken: os.Getenv("AWS_SESSION_TOKEN")}
		return CredentialsFunc(func(context.Context) (Credentials, error) { return c, nil })
	}
	if md == nil {
		return nil
	}
	return RoleCredentials(md)
}
