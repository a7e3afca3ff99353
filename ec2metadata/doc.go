// Package ec2metadata is `flint query`: a drop-in for the ec2-metadata
// script of Debian's amazon-ec2-utils 2.0.1. It owns the command line
// (flags, their order, --all, --help, exit codes) and the exact text the
// script prints, down to the shell's word splitting, echo and cut quirks;
// it leaves the protocol (endpoint, token, retries) to package imds, which
// it reaches through the one-method Getter.
//
// Byte for byte as 2.0.1: every flag of the script (-a -l -m -n -b -i -t
// -h -o -k -z -c -p -v -u -r -e -s -d -g and their long forms, -h being
// local-hostname), --all and the bare invocation (same list and order),
// several flags in order, "not available" lines, --help, and exit codes:
// a bad argument prints the output of the arguments before it, then the
// help, and exits 1; --all and --help end processing; an empty argument
// ends it silently.
//
// Added, with the semantics of upstream's later script: -R/--region
// (placement/region), -P/--partition (services/partition),
// -D/--aws-domain (services/domain), -Z/--availability-zone-id,
// --quiet (no "label: " prefixes or headers) and repeated --path P (see
// NormalizePath). Added by flint: --json (see writeJSON), --endpoint URL,
// and the client's IMDSv2-preferred fallback to v1.
//
// Deliberate differences from the script:
//   - all keys are fetched concurrently with one token, then printed in
//     order, so a failure can be reported before anything is printed;
//   - --help and bad arguments do not contact the service (the script
//     gets a token first and fails without one, even for --help);
//   - when the service cannot be used at all, the script's
//     "[ERROR] Could not get IMDSv2 token..." line is printed on stdout
//     as in 2.0.1, and the reason goes to stderr;
//   - a path that fails for a reason other than 404 (after the client's
//     retries) prints "not available" like the script, but is reported on
//     stderr and makes the exit code 1 (the script exits 0);
//   - values are never subject to pathname expansion (the script's
//     unquoted words would glob against its working directory);
//   - -r and -e ask for meta-data/ramdisk-id rather than the script's
//     latest//meta-data/ramdisk-id;
//   - --path user-data means latest/user-data (upstream would ask for
//     latest/meta-data/user-data, which never exists);
//   - --quiet, --json and --endpoint are accepted anywhere; a bare
//     invocation with only those prints what --all prints.
package ec2metadata
