package userdata

import (
	"encoding/json"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/flint-dev/flint/imds"
)

// InstanceSources is what instance data is built from: the IMDS trees as
// imds.Tree returns them (leaves as strings, "N=name" keys under their
// index N) and what flint knows of its configuration.
type InstanceSources struct {
	// MetaData is the meta-data tree ("instance-id", "placement":
	// {"availability-zone", ...}, "public-keys": {"0": {"openssh-key"}}).
	MetaData map[string]any
	// Dynamic is the dynamic tree ("instance-identity": {"document", ...});
	// nil when it was not read.
	Dynamic map[string]any
	// PublicKeyNames maps a public-keys index to the key's name ("0" →
	// "my-key"), from the public-keys/ listing; cloud-init keys them by
	// name. Without it the index is used.
	PublicKeyNames map[string]string
	// MergedConfig is the merged system configuration, shown as
	// merged_cfg; nil gives a merged_cfg holding only its _doc.
	MergedConfig map[string]any
	// MetadataURL is the metadata service's base URL, named in
	// v1.subplatform; empty means imds.DefaultEndpoint.
	MetadataURL string
}

// InstanceData builds what jinja templates see from an IMDS meta-data
// tree alone (see BuildInstanceData).
func InstanceData(meta map[string]any) map[string]any {
	return BuildInstanceData(InstanceSources{MetaData: meta})
}

// BuildInstanceData builds instance data in the shape cloud-init 22.4's
// Ec2 datasource writes to instance-data.json: v1 (its standardized keys,
// hyphenated and underscored), ds (the crawled meta-data and dynamic trees
// with cloud-init's leaf decoding: JSON objects parsed, multi-line values
// split into lists, security-credentials left out) and merged_cfg. What
// cloud-init reads from the host (sys_info, v1.distro, v1.kernel_release,
// v1.machine, v1.python_version, ...) is not included: templates see those
// as CI_MISSING_JINJA_VAR/<name>.
func BuildInstanceData(s InstanceSources) map[string]any {
	meta := ec2Leaves(s.MetaData, true)
	if meta == nil {
		meta = map[string]any{}
	}
	sshKeys := []any{}
	if pk, ok := meta["public-keys"].(map[string]any); ok {
		sshKeys = indexedPublicKeys(pk)
		meta["public-keys"] = namePublicKeys(pk, s.PublicKeyNames)
	}
	ds := map[string]any{
		"meta-data":             meta,
		"_metadata_api_version": "2021-03-23",
		"_doc":                  "EXPERIMENTAL: The structure and format of content scoped under the 'ds' key may change in subsequent releases of cloud-init.",
	}
	var identity map[string]any
	if s.Dynamic != nil {
		dyn := ec2Leaves(s.Dynamic, false)
		ds["dynamic"] = dyn
		if ii, ok := dyn["instance-identity"].(map[string]any); ok {
			identity, _ = ii["document"].(map[string]any)
		}
	}
	str := func(m map[string]any, k string) (string, bool) {
		v, ok := m[k].(string)
		return v, ok && v != ""
	}

	var az any // null when unknown, as cloud-init writes it
	if v, ok := str(identity, "availabilityZone"); ok {
		az = v
	} else if p, ok := meta["placement"].(map[string]any); ok {
		if v, ok := p["availability-zone"]; ok {
			az = v
		}
	}
	var region any
	if v, ok := str(identity, "region"); ok {
		region = v
	} else if a, ok := az.(string); ok && a != "" {
		region = a[:len(a)-1]
	}
	var instanceID any
	if v, ok := str(identity, "instanceId"); ok {
		instanceID = v
	} else if v, ok := meta["instance-id"]; ok {
		instanceID = v
	}
	base := s.MetadataURL
	if base == "" {
		base = imds.DefaultEndpoint
	}
	subplatform := "metadata (" + strings.TrimSuffix(base, "/") + ")"
	regionStr, _ := region.(string)
	v1 := map[string]any{
		"_beta_keys":        []any{"subplatform"},
		"availability-zone": az,
		"availability_zone": az,
		"cloud_id":          canonicalCloudID(regionStr),
		"cloud-name":        "aws",
		"cloud_name":        "aws",
		"platform":          "ec2",
		"public_ssh_keys":   sshKeys,
		"instance-id":       instanceID,
		"instance_id":       instanceID,
		"region":            region,
		"subplatform":       subplatform,
	}
	if h, ok := localHostname(meta); ok {
		v1["local-hostname"], v1["local_hostname"] = h, h
	}
	merged := map[string]any{}
	for k, v := range s.MergedConfig {
		merged[k] = v
	}
	merged["_doc"] = "Merged cloud-init system config from /etc/cloud/cloud.cfg and /etc/cloud/cloud.cfg.d/"
	return map[string]any{
		"v1":                  v1,
		"ds":                  ds,
		"merged_cfg":          merged,
		"base64_encoded_keys": []any{},
	}
}

// ec2Leaves decodes leaves as cloud-init's MetadataLeafDecoder does and
// leaves out credentials, as its MetadataMaterializer does.
func ec2Leaves(tree map[string]any, dropCredentials bool) map[string]any {
	if tree == nil {
		return nil
	}
	out := make(map[string]any, len(tree))
	for k, v := range tree {
		if dropCredentials && k == "security-credentials" {
			continue
		}
		switch v := v.(type) {
		case map[string]any:
			out[k] = ec2Leaves(v, dropCredentials)
		case string:
			out[k] = decodeLeaf(v)
		default:
			out[k] = v
		}
	}
	return out
}

func decodeLeaf(s string) any {
	if t := strings.TrimSpace(s); strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}") {
		var v any
		if err := json.Unmarshal([]byte(t), &v); err == nil {
			return v
		}
	}
	if strings.Contains(s, "\n") {
		var lines []any
		for _, l := range PySplitLines(s) {
			lines = append(lines, l)
		}
		return lines
	}
	return s
}

// namePublicKeys turns {"0": {"openssh-key": k}} into cloud-init's
// {"name": k}.
func namePublicKeys(pk map[string]any, names map[string]string) map[string]any {
	out := map[string]any{}
	for idx, v := range pk {
		m, ok := v.(map[string]any)
		key, has := m["openssh-key"]
		if !ok || !has {
			out[idx] = v
			continue
		}
		name := idx
		if n := names[idx]; n != "" {
			name = n
		}
		out[name] = key
	}
	return out
}

// indexedPublicKeys is cloud-init's normalize_pubkey_data over
// public-keys, in the order IMDS lists them (by index): each key's
// non-empty lines.
func indexedPublicKeys(pk map[string]any) []any {
	idx := make([]string, 0, len(pk))
	for k := range pk {
		idx = append(idx, k)
	}
	sort.Slice(idx, func(i, j int) bool {
		a, ea := strconv.Atoi(idx[i])
		b, eb := strconv.Atoi(idx[j])
		if ea != nil || eb != nil {
			return idx[i] < idx[j]
		}
		return a < b
	})
	keys := []any{}
	for _, i := range idx {
		m, _ := pk[i].(map[string]any)
		switch kl := m["openssh-key"].(type) {
		case string:
			if kl != "" {
				keys = append(keys, kl)
			}
		case []any:
			for _, k := range kl {
				if s, ok := k.(string); ok && s != "" {
					keys = append(keys, s)
				}
			}
		}
	}
	return keys
}

// localHostname is cloud-init's get_hostname() from meta-data: the first
// label of local-hostname, an IPv4 address spelled ip-a-b-c-d.
func localHostname(meta map[string]any) (string, bool) {
	h, _ := meta["local-hostname"].(string)
	if h == "" {
		return "", false
	}
	if ip := net.ParseIP(h); ip != nil && ip.To4() != nil && !strings.Contains(h, ":") {
		return "ip-" + strings.ReplaceAll(h, ".", "-"), true
	}
	first, _, _ := strings.Cut(h, ".")
	return first, true
}

// canonicalCloudID is cloud-init's canonical_cloud_id for cloud "aws",
// platform "ec2".
func canonicalCloudID(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-china"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-gov"
	}
	return "aws"
}
