package handlers

import (
	"github.com/flint-dev/flint/modules"
	"github.com/flint-dev/flint/network"
)

// Builtins is the chain's order: the one list to edit to add a built-in
// handler. Early handlers make the machine reachable and named; user-level
// provisioning follows; exec plug-ins run after all of them.
func Builtins() []Handler {
	// cloud-init's order where the two overlap: bootcmd and write_files
	// early, then the host's identity and network, modules before anything
	// needs one, users before their keys, runcmd and user scripts last.
	return []Handler{
		// bootcmd, write-files
		Boothooks, Bootcmd, WriteFiles,
		Hostname,
		Network,
		KernelModules,
		// users, ssh-keys, host-keys
		Users, SSHKeys, HostKeys,
		// packages, runcmd, scripts, write-files-deferred, final-message
		Timezone, Packages, Runcmd, WriteFilesDeferred, Scripts, FinalMessage,
	}
}

// ReadyAfter is the handler after which systemd is told READY=1: the host
// is named, networked, and users, keys and host keys are in place, so
// sshd (ordered after flint.service) may start while packages, runcmd and
// scripts go on, as cloud-init's final stage does after sshd.
const ReadyAfter = "host-keys"

// Sections are the flint.yaml sections handlers own, beside the core
// sections (imds, handlers, log).
func Sections() map[string]bool {
	m := map[string]bool{}
	for name := range sectionTypes() {
		m[name] = true
	}
	return m
}

func isBuiltin(name string) bool {
	for _, h := range Builtins() {
		if h.Name() == name {
			return true
		}
	}
	return false
}

// sectionTypes maps each handler section to a constructor of its config type.
func sectionTypes() map[string]func() any {
	return map[string]func() any{
		"hostname": func() any { return new(hostnameConfig) },
		"network":  func() any { return new(network.Config) },
		"modules":  func() any { return new(modules.Config) },
		"scripts":  func() any { return new(scriptsConfig) },
		"packages": func() any { return new(packagesConfig) },

		"users":     func() any { return new(usersConfig) },
		"ssh_keys":  func() any { return new(sshKeysConfig) },
		"host_keys": func() any { return new(hostKeysConfig) },
	}
}
