package userdata

// InstanceData builds what jinja templates see from an IMDS meta-data
// tree (keys as IMDS names them: "instance-id", "local-hostname",
// "placement": {"availability-zone", "region"}, ...), in the shape of
// cloud-init's instance-data.json for EC2: the standard v1 keys plus the
// raw tree under ds.meta_data. Absent keys are left out, so templates
// render them as CI_MISSING_JINJA_VAR/<name> like cloud-init does.
func InstanceData(meta map[string]any) map[string]any {
	v1 := map[string]any{
		"cloud_name":  "aws",
		"cloud_id":    "aws",
		"platform":    "ec2",
		"subplatform": "metadata (IMDS)",
	}
	set := func(key string, v any, ok bool) {
		if ok && v != nil {
			v1[key] = v
		}
	}
	get := func(m map[string]any, k string) (any, bool) {
		v, ok := m[k]
		return v, ok
	}
	v, ok := get(meta, "instance-id")
	set("instance_id", v, ok)
	v, ok = get(meta, "local-hostname")
	set("local_hostname", v, ok)
	v, ok = get(meta, "instance-type")
	set("instance_type", v, ok)
	v, ok = get(meta, "ami-launch-index")
	set("launch_index", v, ok)
	if p, ok := meta["placement"].(map[string]any); ok {
		v, ok := get(p, "availability-zone")
		set("availability_zone", v, ok)
		v, ok = get(p, "region")
		set("region", v, ok)
	}
	return map[string]any{
		"v1": v1,
		"ds": map[string]any{"meta_data": meta},
	}
}
