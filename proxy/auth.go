package proxy

import (
	"crypto/sha256"
	"crypto/subtle"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Admin authentication: "Authorization: Bearer {token}", the scheme matched
// case-insensitively (RFC 9110 §11.1), the token compared in constant time,
// and failed attempts rate-limited per client IP so a token cannot be
// guessed at network speed.

// checkBearer reports whether the Authorization header carries token. Both
// sides are hashed first, so the comparison takes the same time whatever the
// lengths.
func checkBearer(header []byte, token string) bool {
	scheme, cred, ok := strings.Cut(strings.TrimSpace(string(header)), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got, want := sha256.Sum256([]byte(strings.TrimSpace(cred))), sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// Failed-token limits: a client IP may fail authBurst times at once, then
// once per authEvery; beyond that it gets 429 without its token being
// looked at.
const (
	authBurst    = 5
	authEvery    = 2 * time.Second
	authMaxPeers = 10000 // IPs remembered; past it the table starts afresh
)

// failLimiter is a token bucket per client IP, charged only on failures.
type failLimiter struct {
	now func() time.Time // injectable for tests

	mu sync.Mutex // protects peers
	// peers maps an IP to its bucket. Buckets only exist for IPs that
	// failed, and the table is bounded, so a flood of failing addresses
	// cannot grow it without bound.
	peers map[string]*authBucket
}

type authBucket struct {
	tokens float64
	at     time.Time
}

func newFailLimiter() *failLimiter {
	return &failLimiter{now: time.Now, peers: map[string]*authBucket{}}
}

// refill brings b up to date and returns it; the caller holds mu.
func (l *failLimiter) refill(ip string) *authBucket {
	now := l.now()
	b, ok := l.peers[ip]
	if !ok {
		if len(l.peers) >= authMaxPeers {
			clear(l.peers)
		}
		b = &authBucket{tokens: authBurst, at: now}
		l.peers[ip] = b
	}
	b.tokens = math.Min(authBurst, b.tokens+float64(now.Sub(b.at))/float64(authEvery))
	b.at = now
	return b
}

// blocked reports whether ip has no attempts left, and how long until it has.
func (l *failLimiter) blocked(ip string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.peers[ip]; !ok {
		return 0, false
	}
	b := l.refill(ip)
	if b.tokens >= 1 {
		return 0, false
	}
	return time.Duration((1 - b.tokens) * float64(authEvery)), true
}

// fail charges ip one attempt.
func (l *failLimiter) fail(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refill(ip)
	b.tokens = math.Max(0, b.tokens-1)
}

// authorize answers 401, 403 or 429 and returns false unless ctx carries
// the admin token. Without a token, everything is let in on a loopback
// listener; on a public one (Config.AdminPublic) reads are, purges are not.
func (p *Proxy) authorize(ctx *fasthttp.RequestCtx) bool {
	token := *p.adminToken.Load()
	if token == "" {
		if p.cfg.AdminPublic && !ctx.IsGet() && !ctx.IsHead() {
			adminError(ctx, fasthttp.StatusForbidden, errPurgeNeedsToken)
			return false
		}
		return true
	}
	ip := clientIP(ctx)
	if wait, blocked := p.authFails.blocked(ip); blocked {
		secs := int(math.Ceil(wait.Seconds()))
		ctx.Response.Header.Set("Retry-After", strconv.Itoa(secs))
		adminError(ctx, fasthttp.StatusTooManyRequests, "too many failed tokens from this address; retry later")
		return false
	}
	if checkBearer(ctx.Request.Header.Peek("Authorization"), token) {
		return true
	}
	p.authFails.fail(ip)
	ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="iiif-proxy admin"`)
	adminError(ctx, fasthttp.StatusUnauthorized, "missing or wrong bearer token")
	return false
}

// errPurgeNeedsToken is the answer to a purge on a public admin listener
// with no token.
const errPurgeNeedsToken = "purges are refused: the admin listener is not on loopback and no AdminToken is set " +
	"(set AdminToken, AdminTokenFile or RAIS_ADMINTOKEN, then SIGHUP); /metrics and /stats are read-only"

func clientIP(ctx *fasthttp.RequestCtx) string {
	if a, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return ctx.RemoteAddr().String()
}
