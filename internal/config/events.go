package config

import (
	"fmt"
	"time"
)

// Events configures `flint events watch`.
type Events struct {
	// Periods are how often each notice path is polled.
	Periods EventPeriods `yaml:"periods"`
	// HooksDir holds the executables run on a new notice (relative to the root).
	HooksDir string `yaml:"hooks_dir"`
	// HookTimeout bounds one hook.
	HookTimeout Duration `yaml:"hook_timeout"`
	// Actions are the built-in actions taken on a new notice: log, shutdown.
	Actions []string `yaml:"actions"`
	// ShutdownBefore is how long before a notice's time the shutdown
	// action powers the instance off.
	ShutdownBefore Duration `yaml:"shutdown_before"`
	// ShutdownCommand is what the shutdown action runs.
	ShutdownCommand []string `yaml:"shutdown_command"`
}

// EventPeriods are the poll periods of the four notice paths.
type EventPeriods struct {
	Spot      Duration `yaml:"spot"`
	Rebalance Duration `yaml:"rebalance"`
	Scheduled Duration `yaml:"scheduled"`
	Lifecycle Duration `yaml:"lifecycle"`
}

// EventActions are the built-in actions events.actions may name.
var EventActions = []string{"log", "shutdown"}

func defaultEvents() Events {
	return Events{
		Periods: EventPeriods{
			Spot:      Duration(5 * time.Second),
			Rebalance: Duration(5 * time.Second),
			Scheduled: Duration(5 * time.Minute),
			Lifecycle: Duration(5 * time.Second),
		},
		HooksDir:        "/etc/flint/events.d",
		HookTimeout:     Duration(time.Minute),
		Actions:         []string{"log"},
		ShutdownBefore:  Duration(30 * time.Second),
		ShutdownCommand: []string{"systemctl", "poweroff"},
	}
}

func (e Events) validate() error {
	for name, p := range map[string]Duration{"spot": e.Periods.Spot, "rebalance": e.Periods.Rebalance,
		"scheduled": e.Periods.Scheduled, "lifecycle": e.Periods.Lifecycle} {
		if time.Duration(p) < 100*time.Millisecond {
			return fmt.Errorf("events.periods.%s %v: want at least 100ms", name, time.Duration(p))
		}
	}
	if time.Duration(e.HookTimeout) <= 0 {
		return fmt.Errorf("events.hook_timeout %v: must be positive", time.Duration(e.HookTimeout))
	}
	for _, a := range e.Actions {
		if a != "log" && a != "shutdown" {
			return fmt.Errorf("events.actions: unknown action %q (want log or shutdown)", a)
		}
	}
	if len(e.ShutdownCommand) == 0 || e.ShutdownCommand[0] == "" {
		return fmt.Errorf("events.shutdown_command is empty (want e.g. [systemctl, poweroff])")
	}
	return nil
}
