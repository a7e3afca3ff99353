package sshkeys_test

import (
	"fmt"

	"github.com/flint-dev/flint/sshkeys"
)

func ExampleMerge() {
	existing := "# added by hand\n" + alice + "\n"
	keys, problems := sshkeys.Parse("meta-data/public-keys/0", aliceB+"\nssh-rsa AAAA-truncated\n"+bob)
	for _, p := range problems {
		fmt.Println("skipped:", p)
	}
	merged, added := sshkeys.Merge([]byte(existing), keys)
	fmt.Printf("%d added\n%s", added, merged)
	// Output:
	// skipped: meta-data/public-keys/0 line 2: not a valid public key (the ssh-rsa key data is truncated or corrupt) (ssh-rsa AAAA-truncated)
	// 1 added
	// # added by hand
	// ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO+kE/+KKx4mb6XO165mscrkRWw77I8p+O3ETxZJtQag alice@laptop
	// ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBC9ogjwA1jEmTBUpbEG1s8l5RE2eD9sSIfZTFIzGV/SGgySrzuMXkbqB9gCMUakpSDscePraNnPKr9CUBwJygW8= bob
}
