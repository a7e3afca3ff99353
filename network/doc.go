// Package network owns the configuration of an instance's network
// interfaces (ENIs) from instance metadata: which link is primary, the
// addresses each link carries, per-ENI routing tables and source-based
// policy rules, delegated prefixes and MTU.
//
// It is split the way it is tested: Gather reads the metadata keys it needs
// through the small Metadata interface; Plan is a pure function from
// metadata, the links present and Config to the desired state; Diff is a
// pure function from desired and current state to a list of Changes;
// ReadCurrent and Apply are the thin netlink edge; Watch reacts to links
// attached or detached later. Table numbers and rule priorities follow
// amazon-ec2-net-utils (10000 + 100*network-card + device-number) so
// existing runbooks still hold.
//
// The package never removes what it did not add: routes and rules it
// creates carry Protocol (0xf1), and only those are candidates for removal.
// Addresses have no such marker, so an address is removed only when it is
// permanent, lies inside one of the ENI's own subnets, and the ENI's
// metadata was read completely and no longer lists it. An ENI whose
// metadata could not be read is left exactly as it is. Reading IMDS itself
// (tokens, retries) belongs to package imds; when the network handler runs
// belongs to package handlers.
package network
