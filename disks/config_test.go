package disks

import (
	"reflect"
	"strings"
	"testing"
)

func TestDecodeConfigOddValues(t *testing.T) {
	rr := func(r ResizeRootfs) *ResizeRootfs { return &r }
	cases := []struct {
		name string
		doc  string
		want Config
	}{
		{"no keys leave everything to the defaults", "runcmd: [ls]\n", Config{}},
		{"growpart mode false is off", "growpart: {mode: false}\n",
			Config{Growpart: &Growpart{Mode: "off", Devices: []string{"/"}}}},
		{"growpart mode \"no\" and \"off\" are off", "growpart: {mode: \"no\"}\n",
			Config{Growpart: &Growpart{Mode: "off", Devices: []string{"/"}}}},
		{"growpart devices as one string is a list of one", "growpart: {mode: growpart, devices: /dev/xvdf1, ignore_growroot_disabled: true}\n",
			Config{Growpart: &Growpart{Mode: "growpart", Devices: []string{"/dev/xvdf1"}, IgnoreGrowrootDisabled: true}}},
		{"growpart with an empty mapping is the default", "growpart: {}\n",
			Config{Growpart: &Growpart{Mode: "auto", Devices: []string{"/"}}}},
		{"resize_rootfs noblock", "resize_rootfs: noblock\n", Config{ResizeRootfs: rr(ResizeNoblock)}},
		{"resize_rootfs \"yes\" is on", "resize_rootfs: \"yes\"\n", Config{ResizeRootfs: rr(ResizeOn)}},
		{"resize_rootfs 0 is off", "resize_rootfs: 0\n", Config{ResizeRootfs: rr(ResizeOff)}},
		{"resize_rootfs anything else is off", "resize_rootfs: maybe\n", Config{ResizeRootfs: rr(ResizeOff)}},
		{"swap size auto with a human maxsize", "swap: {filename: /swapfile, size: auto, maxsize: 1G}\n",
			Config{Swap: &Swap{Filename: "/swapfile", SizeAuto: true, MaxSize: 1 << 30}}},
		{"swap without filename uses /swap.img", "swap: {size: 1048576}\n",
			Config{Swap: &Swap{Filename: "/swap.img", Size: 1 << 20}}},
		{"disk_setup layout true and a list with types", "disk_setup:\n  ephemeral0: {table_type: mbr, layout: true}\n  /dev/xvdh: {table_type: gpt, layout: [25, [75, 8200]], overwrite: true}\n",
			Config{DiskSetup: map[string]DiskSpec{
				"ephemeral0": {TableType: "mbr", Layout: Layout{Whole: true}},
				"/dev/xvdh":  {TableType: "gpt", Layout: Layout{Parts: []PartSpec{{Percent: 25}, {Percent: 75, Type: "8200"}}}, Overwrite: true},
			}}},
		{"fs_setup extra_opts as a string is split", "fs_setup:\n - {label: x, filesystem: ext4, device: ephemeral0.1, extra_opts: \"-E lazy_itable_init=1\"}\n",
			Config{FsSetup: []FsSpec{{Label: "x", Filesystem: "ext4", Device: "ephemeral0.1", ExtraOpts: StrList{"-E", "lazy_itable_init=1"}}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := DecodeConfig([]byte(c.doc))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("DecodeConfig =\n%+v\nwant\n%+v", got, c.want)
			}
		})
	}
}

func TestDecodeConfigRejectsWithTheLine(t *testing.T) {
	cases := []struct{ doc, want string }{
		{"growpart: [a]\n", "line 1: growpart: want a mapping"},
		{"disk_setup:\n  xvdb: {layout: [150]}\n", `line 2: disk_setup layout: "150" is not a percentage`},
		{"swap:\n  size: 12Q\n", `line 2: swap.size: "12Q" is not a size`},
	}
	for _, c := range cases {
		_, err := DecodeConfig([]byte(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("DecodeConfig(%q) = %v, want one line with %q", c.doc, err, c.want)
		}
	}
}

func TestMountEntryKeepsNullsAndPythonBools(t *testing.T) {
	cfg, err := DecodeConfig([]byte("mounts:\n - [ xvdb, null, ~, true, 0 ]\n"))
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.Mounts[0].Fields
	if len(f) != 5 || *f[0] != "xvdb" || f[1] != nil || f[2] != nil || *f[3] != "True" || *f[4] != "0" {
		t.Errorf("fields = %v", f)
	}
}
