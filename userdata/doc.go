// Package userdata owns the parsing of EC2 user-data the way cloud-init
// 22.4 understands it: decoding (whole-document gzip, MIME
// Content-Transfer-Encoding, size caps), the MIME multipart walk and
// start-line detection, #include / #include-once fetching, jinja
// templates with instance data, and cloud-config decoded into typed
// structs merged across parts with cloud-init's mergers.
//
// It runs nothing: scripts, boothooks, write_files and commands are
// returned as data for the handlers package to act on. The entry points
// are Parse (raw bytes to parts and merged cloud-config) and Inspect (the
// value `flint userdata inspect --json` prints).
package userdata
