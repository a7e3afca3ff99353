package cloudconfig

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/flint-dev/flint/userdata"
)

// PowerStatePlan is what power_state does once the run is over:
// when Condition holds (a command exiting 0; Static when a boolean),
// run Command, waiting at most Timeout seconds for the run to end first.
type PowerStatePlan struct {
	Command []string
	Timeout float64
	// Condition is a command (run by a shell when ConditionShell), or
	// nil with Static giving a boolean condition.
	Condition      []string
	ConditionShell bool
	Static         bool
}

// PowerState plans cc_power_state_change (frequency once per instance) as
// cloud-init 22.4's load_power_state and Distro.shutdown_command do:
// mode halt/poweroff/reboot (-H/-P/-r), delay "now" or whole minutes
// ("+5", 5, "5": python int()), an optional message, timeout as a float
// (default 30), condition a bool, a shell string or an argv list. A false
// static condition gives a nil plan. Bad values are a ConfigError
// (cloud-init logs "Not performing power state change").
func PowerState(v any) (*PowerStatePlan, error) {
	if v == nil {
		return nil, nil
	}
	ps, ok := v.(map[string]any)
	if !ok {
		return nil, configErrorf("power_state", "is %s, not a mapping", typeName(v))
	}
	flag := map[string]string{"halt": "-H", "poweroff": "-P", "reboot": "-r"}[userdata.PyStr(ps["mode"])]
	if _, isStr := ps["mode"].(string); flag == "" || !isStr {
		return nil, configErrorf("power_state.mode", "must be one of halt, poweroff, reboot; found %q", userdata.PyStr(ps["mode"]))
	}
	delay := "now"
	if d, ok := ps["delay"]; ok {
		n, err := pyInt(d)
		if s, isStr := d.(string); isStr && s == "now" {
			err = nil
		} else if err != nil {
			return nil, configErrorf("power_state.delay", "must be 'now' or '+m' (minutes); found %q", userdata.PyStr(d))
		} else {
			delay = fmt.Sprintf("+%d", n)
		}
	}
	cmd := []string{"shutdown", flag, delay}
	if m := ps["message"]; userdata.Truthy(m) {
		cmd = append(cmd, userdata.PyStr(m))
	}
	p := &PowerStatePlan{Command: cmd, Timeout: 30, Static: true}
	if t, ok := ps["timeout"]; ok {
		f, err := pyFloat(t)
		if err != nil {
			return nil, configErrorf("power_state.timeout", "failed to convert %q to a number", userdata.PyStr(t))
		}
		p.Timeout = f
	}
	switch c := ps["condition"].(type) {
	case nil:
		if _, ok := ps["condition"]; ok {
			return nil, configErrorf("power_state.condition", "must be a list, a boolean or a string")
		}
	case bool:
		if !c {
			return nil, nil
		}
	case string:
		p.Condition, p.ConditionShell, p.Static = []string{c}, true, false
	case []any:
		for _, a := range c {
			p.Condition = append(p.Condition, userdata.PyStr(a))
		}
		p.Static = false
	default:
		return nil, configErrorf("power_state.condition", "must be a list, a boolean or a string")
	}
	return p, nil
}

// pyInt is python's int() for YAML scalars.
func pyInt(v any) (int64, error) {
	switch v := v.(type) {
	case bool:
		if v {
			return 1, nil
		}
		return 0, nil
	case int:
		return int64(v), nil
	case int64:
		return v, nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, fmt.Errorf("not finite")
		}
		return int64(v), nil
	case string:
		return strconv.ParseInt(strings.ReplaceAll(strings.TrimSpace(v), "_", ""), 10, 64)
	}
	return 0, fmt.Errorf("not a number")
}

// pyFloat is python's float() for YAML scalars.
func pyFloat(v any) (float64, error) {
	switch v := v.(type) {
	case bool:
		if v {
			return 1, nil
		}
		return 0, nil
	case int:
		return float64(v), nil
	case int64:
		return float64(v), nil
	case float64:
		return v, nil
	case string:
		return strconv.ParseFloat(strings.TrimSpace(v), 64)
	}
	return 0, fmt.Errorf("not a number")
}
