package s3test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// TestServerRoundTripAndRestart checks the harness itself: an object put
// is read back, a stopped server refuses, and a restarted one still has it.
func TestServerRoundTripAndRestart(t *testing.T) {
	s := Start(t)
	b := s.Bucket("")
	c := s.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	body := []byte("hello, object storage")
	if _, err := c.PutObject(ctx, b, "a/b.txt", bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	get := func() ([]byte, error) {
		o, err := c.GetObject(ctx, b, "a/b.txt", minio.GetObjectOptions{})
		if err != nil {
			return nil, err
		}
		defer o.Close()
		return io.ReadAll(o)
	}
	if got, err := get(); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("get = %q, %v", got, err)
	}
	s.Stop()
	if _, err := get(); err == nil {
		t.Fatal("a stopped server answered")
	}
	s.Restart()
	if got, err := get(); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("after restart: get = %q, %v", got, err)
	}
}
