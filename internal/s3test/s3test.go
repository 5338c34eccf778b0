// Package s3test starts a real S3 server (MinIO, built from the Go module
// proxy by `make s3-deps`) on loopback for tests, and stops it by its PID.
//
// The tests of S3 sources and of the shared render tier use it; nothing
// here is a mock. Outside CI a missing server skips the test with the
// command that installs it; in CI (CI=true) it fails, because `make test`
// installs it and a skip would hide a broken setup.
package s3test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Credentials of every test server: MinIO's root user.
const (
	AccessKey = "iiifproxytest"
	SecretKey = "iiifproxytest-secret"
	Region    = "us-east-1"
)

// Binary is where `make s3-deps` installs the MinIO server; MINIO_BIN
// overrides it.
func Binary() string {
	if p := os.Getenv("MINIO_BIN"); p != "" {
		return p
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "iiif-proxy", "bin", "minio")
}

// Server is one MinIO process serving a directory on a loopback port.
type Server struct {
	Endpoint string // host:port, no scheme
	Dir      string // the data directory

	t    testing.TB
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *lockedBuffer
}

// Start starts a MinIO server on a free loopback port with a fresh data
// directory, waits until it answers, and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if _, err := os.Stat(bin); err != nil {
		msg := fmt.Sprintf("MinIO server not found at %s: `make s3-deps` (run by `make test`) builds it from the Go module proxy", bin)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	s := &Server{Dir: t.TempDir(), t: t}
	s.Endpoint = freePort(t)
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Stop stops the server (SIGTERM, then SIGKILL after 5 s) and waits for it.
// Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Kill stops the server at once with SIGKILL, as a crash would.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Restart starts the server again on the same port and data directory.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatal(err)
	}
}

// Log is what the server has written so far.
func (s *Server) Log() string { return s.log.String() }

func (s *Server) start() error {
	cmd := exec.Command(Binary(), "server", "--quiet", "--address", s.Endpoint,
		"--console-address", freePort(s.t), s.Dir)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+AccessKey,
		"MINIO_ROOT_PASSWORD="+SecretKey,
		"MINIO_REGION="+Region,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=1",
	)
	s.log = &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start MinIO: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		select {
		case <-done:
			return fmt.Errorf("MinIO exited at start:\n%s", s.log.String())
		default:
		}
		resp, err := http.Get("http://" + s.Endpoint + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.Kill()
	return fmt.Errorf("MinIO did not become ready in 60 s:\n%s", s.log.String())
}

// Client is a minio-go client for the server, for setting up objects.
func (s *Server) Client() *minio.Client {
	s.t.Helper()
	c, err := minio.New(s.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(AccessKey, SecretKey, ""),
		Secure: false,
		Region: Region,
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

// Bucket creates a bucket (named after the test when name is empty) and
// returns its name.
func (s *Server) Bucket(name string) string {
	s.t.Helper()
	if name == "" {
		name = bucketName(s.t.Name())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.Client().MakeBucket(ctx, name, minio.MakeBucketOptions{Region: Region})
	var resp minio.ErrorResponse
	if errors.As(err, &resp) && resp.Code == "BucketAlreadyOwnedByYou" {
		err = nil
	}
	if err != nil {
		s.t.Fatalf("make bucket %s: %v", name, err)
	}
	return name
}

// Put uploads a local file as key in bucket.
func (s *Server) Put(bucket, key, file string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := s.Client().FPutObject(ctx, bucket, key, file, minio.PutObjectOptions{}); err != nil {
		s.t.Fatalf("put %s/%s: %v", bucket, key, err)
	}
}

// Env is the environment a child iiif-proxy needs to reach the server as
// RAIS documents it (RAIS_S3_ENDPOINT, RAIS_S3_DISABLESSL,
// RAIS_S3_FORCEPATHSTYLE) with the standard AWS_* credentials.
func (s *Server) Env() []string {
	return []string{
		"RAIS_S3_ENDPOINT=" + s.Endpoint,
		"RAIS_S3_DISABLESSL=true",
		"RAIS_S3_FORCEPATHSTYLE=true",
		"AWS_ACCESS_KEY_ID=" + AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + SecretKey,
		"AWS_REGION=" + Region,
	}
}

// bucketName turns a test name into a valid bucket name (3–63 of [a-z0-9-]).
func bucketName(test string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(test) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	n := strings.Trim(b.String(), "-")
	if len(n) > 50 {
		n = n[:50]
	}
	return "t-" + strings.Trim(n, "-")
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 1<<20 {
		l.b.Write(p)
	}
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
