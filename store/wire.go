package store

import (
	"errors"
	"fmt"
	"time"

	"github.com/cespare/xxhash/v2"
)

// Encode returns e as one self-checking value in the store's current format
// (see format.go), for a copy of the entry kept outside Pebble: the shared
// render tier writes it as an S3 object, so a shared entry carries the same
// header and body checksums, Last-Modified and source identity as a local
// one. StoredAt is written as given (zero: now); ETag is recomputed.
func Encode(e Entry) ([]byte, error) {
	if len(e.ContentType) > maxCTLen || len(e.SourceIdentity) > maxIdentLen || int64(len(e.Body)) > maxBodyLen {
		return nil, ErrTooLarge
	}
	if e.StoredAt.IsZero() {
		e.StoredAt = time.Now()
	}
	h := header{storedAt: e.StoredAt.UnixNano(), access: seconds(e.StoredAt), bodyHash: xxhash.Sum64(e.Body)}
	if !e.LastModified.IsZero() {
		h.flags |= flagLastMod
		h.lastMod = e.LastModified.Unix()
	}
	v := make([]byte, entryLen(&e))
	encodeEntry(v, &h, &e)
	return v, nil
}

// errDecode is what Decode returns for a value that fails verification.
var errDecode = errors.New("value failed verification")

// Decode checks v (written by Encode, or any format the store reads) and
// returns its entry, the body a private copy. A value that is truncated,
// padded or altered in any byte fails with an error matching ErrCorrupt.
func Decode(v []byte) (Entry, error) {
	h, ok := decodeValue(v)
	if !ok {
		return Entry{}, fmt.Errorf("%w: %w", errCorruptMiss, errDecode)
	}
	e, _ := toEntry(v, &h, nil)
	return e, nil
}
