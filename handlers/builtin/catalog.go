// Package builtin holds flint's built-in handlers, one file each, named
// after the handler. Each file declares its handler once as a
// handlers.Builtin (name, frequency, needs, flint.yaml section and its
// type, run function); Catalog is the one ordered list of them. Pure
// decisions (what the host should look like) sit beside thin effects (the
// writes and tool calls that get it there).
package builtin

import "github.com/flint-dev/flint/handlers"

// Catalog is the chain's order: the one list to edit to add a built-in
// handler. Early handlers make the machine reachable and named; user-level
// provisioning follows; exec plug-ins run after all of them.
func Catalog() handlers.Catalog {
	// cloud-init's order where the two overlap: bootcmd and write_files
	// early, then the disks as in cloud-init's init stage (growpart,
	// resize_rootfs, disk_setup, mounts: the root has its size and the
	// volumes their filesystems before anything writes much or a user's
	// home may live on them), then the host's identity and network,
	// modules before anything needs one, users before their keys, runcmd
	// and user scripts last.
	return handlers.Catalog{
		boothooksHandler,
		bootcmdHandler,
		writeFilesHandler,
		growpartHandler,
		resizeRootfsHandler,
		diskSetupHandler,
		mountsHandler,
		hostnameHandler,
		// These three run beside the chain (Builtin.Beside): the host
		// keys (named after the host name just set) while the users are
		// made, the secondary ENIs, a module bundle's download.
		hostKeysHandler,
		networkHandler,
		kernelModulesHandler,
		// cloud-init's init stage: ca_certs, then users_groups (the
		// top-level groups, then users).
		caCertsHandler,
		groupsHandler,
		usersHandler,
		// systemd is told READY=1 after ssh-keys, once the handlers
		// beside the chain are done: the host is named, networked, and
		// users, keys and host keys are in place, so sshd (ordered after
		// flint.service) may start while packages, runcmd and scripts go
		// on, as cloud-init's final stage does after sshd.
		sshKeysHandler,
		// cloud-init's config stage: ssh_import_id, locale,
		// set_passwords' ssh_pwauth, yum_add_repo (RPM images),
		// apt_configure, ntp, then timezone.
		sshImportIDHandler,
		localeHandler,
		sshPwauthHandler,
		yumReposHandler,
		aptHandler,
		ntpHandler,
		timezoneHandler,
		packagesHandler,
		runcmdHandler,
		writeFilesDeferredHandler,
		scriptsHandler,
		// cloud-init's final stage: phone_home, then the final message.
		phoneHomeHandler,
		finalMessageHandler,
		// Last: it acts once flint has exited.
		powerStateHandler,
	}
}
