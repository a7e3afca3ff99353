package ec2metadata

// HelpText returns what --help prints, for the manual page: amazon-ec2-utils'
// text, unchanged.
func HelpText() string { return helpText }

// helpText is print_help of amazon-ec2-utils 2.0.1, byte for byte (trailing
// space on the second line included): scripts and people compare it. The
// flags flint adds are documented in the package comment instead, so that
// `--help` stays identical to the script's.
const helpText = "" +
	"ec2-metadata v0.1.2\n" +
	"Use to retrieve EC2 instance metadata from within a running EC2 instance. \n" +
	"e.g. to retrieve instance id: ec2-metadata -i\n" +
	"\t\t to retrieve ami id: ec2-metadata -a\n" +
	"\t\t to get help: ec2-metadata --help\n" +
	"For more information on Amazon EC2 instance meta-data, refer to the documentation at\n" +
	"https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-instance-metadata.html\n" +
	"\n" +
	"Usage: ec2-metadata <option>\n" +
	"Options:\n" +
	"--all                     Show all metadata information for this host (also default).\n" +
	"-a/--ami-id               The AMI ID used to launch this instance\n" +
	"-l/--ami-launch-index     The index of this instance in the reservation (per AMI).\n" +
	"-m/--ami-manifest-path    The manifest path of the AMI with which the instance was launched.\n" +
	"-n/--ancestor-ami-ids     The AMI IDs of any instances that were rebundled to create this AMI.\n" +
	"-b/--block-device-mapping Defines native device names to use when exposing virtual devices.\n" +
	"-i/--instance-id          The ID of this instance\n" +
	"-t/--instance-type        The type of instance to launch. For more information, see Instance Types.\n" +
	"-h/--local-hostname       The local hostname of the instance.\n" +
	"-o/--local-ipv4           Public IP address if launched with direct addressing; private IP address if launched with public addressing.\n" +
	"-k/--kernel-id            The ID of the kernel launched with this instance, if applicable.\n" +
	"-z/--availability-zone    The availability zone in which the instance launched. Same as placement\n" +
	"-c/--product-codes        Product codes associated with this instance.\n" +
	"-p/--public-hostname      The public hostname of the instance.\n" +
	"-v/--public-ipv4          NATted public IP Address\n" +
	"-u/--public-keys          Public keys. Only available if supplied at instance launch time\n" +
	"-r/--ramdisk-id           The ID of the RAM disk launched with this instance, if applicable.\n" +
	"-e/--reservation-id       ID of the reservation.\n" +
	"-s/--security-groups      Names of the security groups the instance is launched in. Only available if supplied at instance launch time\n" +
	"-d/--user-data            User-supplied data.Only available if supplied at instance launch time.\n" +
	"-g/--tags                 Tags assigned to this instance.\n"
