package main

import (
	"fmt"
	"runtime"
)

// version and commit are stamped at build by the Makefile:
//
//	go build -ldflags "-X main.version=v1.2.0 -X main.commit=abc1234" ./cmd/iiif-proxy
//
// A plain `go build` leaves them as they are here: "devel", no commit.
var (
	version = "devel"
	commit  = ""
)

// versionLine is what -version prints and -help starts with.
func versionLine() string {
	c := commit
	if c == "" {
		c = "unknown"
	}
	return fmt.Sprintf("iiif-proxy %s (commit %s, %s, %s/%s)", version, c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
