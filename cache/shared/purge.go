package shared

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/minio/minio-go/v7"
)

// PurgedAt implements cache.Shared.
func (l *Layer) PurgedAt(id string, maxAge time.Duration) time.Time {
	g, ok := l.gens.Get(id)
	if ok && l.now().Sub(g.read) <= maxAge {
		return g.at
	}
	v, _, _ := l.genFlight.Do(id, func() (any, error) {
		data, _, _, found, err := l.fetch(context.Background(), l.keys.generation(id))
		if err != nil {
			return g.at, nil // unknown: what was last known stands, and is asked again next time
		}
		var at time.Time
		if found {
			n, perr := strconv.ParseInt(string(bytes.TrimSpace(data)), 10, 64)
			if perr == nil {
				at = time.Unix(0, n)
			}
		}
		l.gens.Add(id, generation{at: at, read: l.now()})
		return at, nil
	})
	return v.(time.Time)
}

// purgeWait bounds a purge's listing and deletes.
const purgeWait = 30 * time.Second

// PurgeID implements cache.Shared: the generation first (waited for, so
// that no node takes an entry of id written before now from the moment it
// reads it), then the entries themselves, in the background.
func (l *Layer) PurgeID(id string) {
	at := l.now()
	body := []byte(strconv.FormatInt(at.UnixNano(), 10))
	err := l.call(context.Background(), func(ctx context.Context) error {
		_, err := l.c.PutObject(ctx, l.bucket, l.keys.generation(id), bytes.NewReader(body), int64(len(body)),
			minio.PutObjectOptions{ContentType: "text/plain"})
		return err
	})
	if err != nil {
		l.log.Warn("shared cache: purge not recorded; other nodes keep serving the identifier's entries until they revalidate its source",
			"id", id, "error", err)
		return
	}
	l.gens.Add(id, generation{at: at, read: at})
	l.stats.purges.Add(1)
	// The entries themselves go in the background: from now on they are
	// never served (the generation), and a listing of many objects must
	// not hold up the request or the admin call that purged.
	l.bg.Add(1)
	go func() {
		defer l.bg.Done()
		l.deleteEntries(id)
	}()
}

// deleteEntries deletes every shared entry of id: one prefix listing, one
// batch delete.
func (l *Layer) deleteEntries(id string) {
	n := 0
	err := l.callFor(context.Background(), purgeWait, func(ctx context.Context) error {
		objs := l.c.ListObjects(ctx, l.bucket, minio.ListObjectsOptions{Prefix: l.keys.entries(id), Recursive: true})
		todo := make(chan minio.ObjectInfo)
		listed := make(chan struct{})
		var listErr error // written before listed closes
		go func() {
			defer close(listed)
			defer close(todo)
			for o := range objs {
				if o.Err != nil {
					listErr = o.Err
					continue
				}
				select {
				case todo <- o:
					n++
				case <-ctx.Done():
					listErr = ctx.Err()
					return
				}
			}
		}()
		var rmErr error
		for e := range l.c.RemoveObjects(ctx, l.bucket, todo, minio.RemoveObjectsOptions{}) {
			rmErr = e.Err
		}
		<-listed
		return errors.Join(listErr, rmErr)
	})
	if err != nil {
		// The generation holds: what is left is never served, and expires.
		l.log.Warn("shared cache: purge left entries behind (recorded: they are not served)", "id", id, "error", err)
	}
	l.log.Info("shared cache purged", "id", id, "objects", n)
}
