package shared

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/iiif-proxy/iiif-proxy/store"
)

// maxObject bounds what a get reads: no entry the store writes is larger
// (a body is at most 4 GiB in the format, but no IIIF response near it is
// allowed by the proxy's limits).
const maxObject = 1 << 30

// fetch reads object k whole; found is false when it does not exist.
func (l *Layer) fetch(ctx context.Context, k string) (data []byte, mod time.Time, etag string, found bool, err error) {
	err = l.call(ctx, func(ctx context.Context) error {
		obj, err := l.c.GetObject(ctx, l.bucket, k, minio.GetObjectOptions{})
		if err != nil {
			return err
		}
		defer obj.Close()
		st, err := obj.Stat()
		if err != nil {
			return err
		}
		if st.Size < 0 || st.Size > maxObject {
			return fmt.Errorf("object %s: size %d out of bounds", k, st.Size)
		}
		data = make([]byte, st.Size)
		if _, err := io.ReadFull(obj, data); err != nil {
			return err
		}
		mod, etag = st.LastModified, st.ETag
		return nil
	})
	if notFound(err) {
		return nil, time.Time{}, "", false, nil
	}
	return data, mod, etag, err == nil, err
}

// get reads the entry at k, verified and not purged since it was written;
// count says whether this look counts as a hit or miss.
func (l *Layer) get(ctx context.Context, k, id string, count bool) (store.Entry, bool) {
	data, mod, _, found, _ := l.fetch(ctx, k)
	if !found {
		if count {
			l.stats.misses.Add(1)
		}
		return store.Entry{}, false
	}
	e, err := store.Decode(data)
	if err != nil {
		// Never served; deleted so that the next render replaces it.
		l.stats.corrupt.Add(1)
		l.q.remove(k)
		if count {
			l.stats.misses.Add(1)
		}
		return store.Entry{}, false
	}
	if p := l.PurgedAt(id, l.cfg.GenerationTTL); !p.IsZero() && !e.StoredAt.After(p) {
		// Written by a render that began before the identifier's purge.
		l.stats.purged.Add(1)
		l.q.remove(k)
		if count {
			l.stats.misses.Add(1)
		}
		return store.Entry{}, false
	}
	if l.cfg.RefreshAfter < 1 && l.now().Sub(mod) > time.Duration(l.cfg.RefreshAfter*float64(l.cfg.Retention)) {
		l.refresh(k)
	}
	l.stats.hits.Add(1)
	return e, true
}

// refresh resets the age of entry k (the sliding lifetime), once however
// many reads ask at the same time.
func (l *Layer) refresh(k string) {
	if _, busy := l.refreshing.LoadOrStore(k, struct{}{}); busy {
		return
	}
	if !l.q.copy(k) {
		l.refreshing.Delete(k)
	}
}

// doRefresh copies k onto itself, replacing its metadata: S3 refuses a copy
// onto itself that changes nothing, and the copy gets a new Last-Modified,
// from which the lifecycle rule counts.
func (l *Layer) doRefresh(k string) {
	defer l.refreshing.Delete(k)
	err := l.call(context.Background(), func(ctx context.Context) error {
		_, err := l.c.CopyObject(ctx, minio.CopyDestOptions{Bucket: l.bucket, Object: k, ReplaceMetadata: true,
			UserMetadata: map[string]string{"Iiif-Refreshed": l.now().UTC().Format(time.RFC3339)}},
			minio.CopySrcOptions{Bucket: l.bucket, Object: k})
		return err
	})
	if err == nil {
		l.stats.refreshes.Add(1)
	}
}
