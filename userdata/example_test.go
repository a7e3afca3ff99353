package userdata_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/flint-dev/flint/userdata"
)

func ExampleInspect() {
	raw := []byte("#cloud-config\nhostname: web-1\nruncmd: [[echo, hi]]\n")
	in, err := userdata.Inspect(context.Background(), raw, userdata.Options{NoInclude: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	enc.Encode(in)
	// Output:
	// {
	//   "parts": [
	//     {
	//       "content_type": "text/cloud-config",
	//       "filename": "part-001",
	//       "size": 51,
	//       "sha256": "62055d5d7c7ef136cebd04944fa4207fa9b86b7358240b29152ad7e441d39d41"
	//     }
	//   ],
	//   "cloud_config": {
	//     "hostname": "web-1",
	//     "runcmd": [
	//       [
	//         "echo",
	//         "hi"
	//       ]
	//     ]
	//   }
	// }
}

func ExampleParse() {
	raw := []byte("Content-Type: multipart/mixed; boundary=b\nMIME-Version: 1.0\n\n" +
		"--b\nContent-Type: text/x-shellscript-per-boot\n\n#!/bin/sh\necho boot\n" +
		"--b\nContent-Type: text/cloud-config\n\n#cloud-config\nwrite_files: [{path: /etc/x, content: aGk=, encoding: b64}]\n--b--\n")
	ud, err := userdata.Parse(context.Background(), raw, userdata.Options{NoInclude: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range ud.Parts {
		if f, isScript := p.ScriptFrequency(); isScript {
			fmt.Println(p.Filename, p.ContentType, "script", f)
		} else {
			fmt.Println(p.Filename, p.ContentType)
		}
	}
	w := ud.CloudConfig.WriteFiles[0]
	content, _ := w.Decoded()
	fmt.Printf("%s %q %v\n", w.Path, content, w.Permissions)
	// Output:
	// part-001 text/x-shellscript-per-boot script per-boot
	// part-002 text/cloud-config
	// /etc/x "hi" -rw-r--r--
}
