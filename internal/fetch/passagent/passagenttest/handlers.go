package passagenttest

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/injector-dev/injector/internal/crypto/envelope"
)

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.total++
	s.perPath[r.URL.Path]++
	f := s.takeFault(r.URL.Path)
	token := s.token
	if !s.tokenExp.IsZero() && time.Now().After(s.tokenExp) {
		token = "\x00expired" // no bearer matches, not even an empty one
	}
	kdf := s.kdf
	if s.advertised != (envelope.KDFParams{}) {
		kdf = s.advertised
	}
	s.mu.Unlock()

	if f != nil {
		if f.Delay > 0 {
			select {
			case <-time.After(f.Delay):
			case <-r.Context().Done():
				return
			}
		}
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		if f.Bloat > 0 {
			bloat(w, f.Bloat)
			return
		}
		if f.Status == 0 && f.Body != "" {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(f.Body))
			return
		}
		if f.Status != 0 {
			if f.Body != "" {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(f.Status)
				w.Write([]byte(f.Body))
			} else {
				writeError(w, f.Status, codeFor(f.Status), http.StatusText(f.Status))
			}
			return
		}
	}

	if r.Header.Get("Authorization") != "Bearer "+token {
		writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "Unauthorized")
		return
	}
	path := r.URL.Path
	switch {
	case path == "/api/passwords" && r.Method == http.MethodGet:
		s.list(w, r)
	case path == "/api/vault/salt" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]any{
			"salt": envelope.EncodeBase64(s.salt), "kdf": "argon2id",
			"memory_kib": kdf.MemoryKiB, "iterations": kdf.Iterations, "parallelism": kdf.Parallelism,
		})
	case path == "/api/auth/csrf-token" && r.Method == http.MethodGet:
		t := randHex(16)
		s.mu.Lock()
		s.csrf[t] = true
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]string{"csrfToken": t})
	case strings.HasPrefix(path, "/api/passwords/") && strings.HasSuffix(path, "/reveal") && r.Method == http.MethodPost:
		s.revealEntry(w, r, strings.TrimSuffix(strings.TrimPrefix(path, "/api/passwords/"), "/reveal"))
	case strings.HasPrefix(path, "/api/passwords/") && r.Method == http.MethodDelete:
		s.deleteEntry(w, r, strings.TrimPrefix(path, "/api/passwords/"))
	default:
		writeError(w, http.StatusNotFound, "NOT_FOUND", "Not found")
	}
}

// bloat streams a list page of about size bytes of well-formed records
// whose fields are junk, in chunks, without a Content-Length.
func bloat(w http.ResponseWriter, size int) {
	w.Header().Set("Content-Type", "application/json")
	junk := strings.Repeat("A", 4096)
	io.WriteString(w, `{"data":[`)
	n := 0
	for i := 0; n < size; i++ {
		sep := ","
		if i == 0 {
			sep = ""
		}
		rec := fmt.Sprintf(`%s{"id":"bloat-%d","name":"bloat %d","encryption_version":3,"wrapped_item_key":"%s","encrypted_data":"%s"}`,
			sep, i, i, junk[:80], junk)
		if _, err := io.WriteString(w, rec); err != nil {
			return // the client hung up
		}
		n += len(rec)
	}
	fmt.Fprintf(w, `],"pagination":{"page":1,"limit":%d,"total":%d}}`, 2000, 0)
}

// takeFault returns the first queued fault for path, consuming one use.
func (s *Server) takeFault(path string) *Fault {
	for i, f := range s.faults {
		if f.Path != "" && !strings.HasPrefix(path, f.Path) {
			continue
		}
		f.Times--
		if f.Times <= 0 {
			s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
		}
		return f
	}
	return nil
}

// list serves GET /api/passwords?page=&limit= in creation order. Deleted
// records are not listed; they live on as tombstones.
func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	page, limit := 1, 50
	q := r.URL.Query()
	var err error
	if v := q.Get("page"); v != "" {
		if page, err = strconv.Atoi(v); err != nil || page < 1 {
			writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "page must be a positive integer")
			return
		}
	}
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 2000 {
			writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "limit must be between 1 and 2000")
			return
		}
	}
	if s.maxLimit > 0 {
		limit = min(limit, s.maxLimit)
	}
	s.mu.Lock()
	if ok, wait := s.crud.allow(time.Now()); !ok {
		s.mu.Unlock()
		tooMany(w, wait)
		return
	}
	var live []*Record
	for _, rec := range s.records {
		if rec.DeletedAt == nil || s.leakDeleted {
			live = append(live, rec)
		}
	}
	start := min((page-1)*limit, len(live))
	end := min(start+limit, len(live))
	body, err := json.Marshal(map[string]any{
		"data":       live[start:end],
		"pagination": map[string]int{"page": page, "limit": limit, "total": len(live)},
	})
	s.mu.Unlock()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "INTERNAL_ERROR", "encoding failed")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

// revealEntry serves POST /api/passwords/{id}/reveal: CSRF, then the
// fail-closed limiter (503 when its store is down), then the envelope.
func (s *Server) revealEntry(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reveals++
	if !s.csrf[r.Header.Get("x-csrf-token")] {
		writeError(w, http.StatusForbidden, "FORBIDDEN", "Invalid CSRF token")
		return
	}
	if s.revealDown {
		w.Header().Set("Retry-After", "30")
		writeError(w, http.StatusServiceUnavailable, "INTERNAL_ERROR", "Rate limiter unavailable")
		return
	}
	if ok, wait := s.reveal.allow(time.Now()); !ok {
		tooMany(w, wait)
		return
	}
	for _, rec := range s.records {
		if rec.ID != id || rec.DeletedAt != nil {
			continue
		}
		if rec.EncryptionVersion < 3 {
			writeError(w, http.StatusUnprocessableEntity, "UNPROCESSABLE", "Entry is not V3")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"envelope": map[string]any{
			"wrappedItemKey": rec.WrappedItemKey, "encryptedData": rec.EncryptedData, "version": 3,
		}})
		return
	}
	writeError(w, http.StatusNotFound, "NOT_FOUND", "Password not found")
}

// deleteEntry serves DELETE /api/passwords/{id}: CSRF, CRUD limit, then a
// soft delete that leaves a tombstone.
func (s *Server) deleteEntry(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.csrf[r.Header.Get("x-csrf-token")] {
		writeError(w, http.StatusForbidden, "FORBIDDEN", "Invalid CSRF token")
		return
	}
	if ok, wait := s.crud.allow(time.Now()); !ok {
		tooMany(w, wait)
		return
	}
	if !s.deleteLocked(id) {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "Password not found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"success": true})
}

// tooMany is the rate-limit page's 429: Retry-After in whole seconds and
// the error_code body shape.
func tooMany(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
	writeJSON(w, http.StatusTooManyRequests, map[string]string{
		"error": "Too many requests. Please try again later.", "error_code": "rate_limit_exceeded",
	})
}

// writeError is the overview page's error shape.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": msg, "code": code, "status": status})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func codeFor(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "VALIDATION_ERROR"
	case http.StatusUnauthorized:
		return "UNAUTHORIZED"
	case http.StatusForbidden:
		return "FORBIDDEN"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusTooManyRequests:
		return "RATE_LIMITED"
	}
	return "INTERNAL_ERROR"
}
