package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/messages"
)

// MessageService accepts messages and reports on them.
type MessageService interface {
	Send(ctx context.Context, actor account.Actor, req messages.Request, idempotencyKey string) (messages.Accepted, error)
	SendBatch(ctx context.Context, actor account.Actor, reqs []messages.Request) ([]messages.BatchResult, error)
	Get(ctx context.Context, accountID, id string) (messages.Message, error)
	List(ctx context.Context, accountID string, f messages.Filter) (messages.Page, error)
	Cancel(ctx context.Context, accountID, id string) (bool, error)
	Suppressions(ctx context.Context, accountID string) ([]messages.Suppression, error)
	AddSuppression(ctx context.Context, accountID, address string) (messages.Suppression, error)
	RemoveSuppression(ctx context.Context, accountID, address string) error
	Reschedule(ctx context.Context, accountID, id string, sendAt time.Time) (messages.Message, error)
	Summarize(ctx context.Context, accountID string, q messages.ReportQuery) (messages.Summary, error)
	RecipientRows(ctx context.Context, accountID string, q messages.ReportQuery) (messages.RowPage, error)
}

// sendRequest is the MessageRequest schema of api/openapi.yaml.
type sendRequest struct {
	From        string            `json:"from"`
	To          []string          `json:"to"`
	Cc          []string          `json:"cc"`
	Bcc         []string          `json:"bcc"`
	ReplyTo     []string          `json:"reply_to"`
	Subject     string            `json:"subject"`
	Text        string            `json:"text"`
	HTML        string            `json:"html"`
	Headers     map[string]string `json:"headers"`
	Attachments []struct {
		Filename    string `json:"filename"`
		ContentType string `json:"content_type"`
		Content     []byte `json:"content"` // base64 in JSON
		ContentID   string `json:"content_id"`
	} `json:"attachments"`
	Tags       []string          `json:"tags"`
	Metadata   map[string]string `json:"metadata"`
	Kind       string            `json:"kind"`
	SendAt     *time.Time        `json:"send_at"`
	Encryption string            `json:"encryption"`
	Tracking   messages.Tracking `json:"tracking"`
	// A stored template instead of subject, text and html (docs/templates.md).
	TemplateID      string                    `json:"template_id"`
	TemplateVersion int                       `json:"template_version"`
	TemplateData    map[string]any            `json:"template_data"`
	RecipientData   map[string]map[string]any `json:"recipient_data"`
}

// encryptionChoices are the values of "encryption" (SecureLine acts on
// them; until then they are recorded).
var encryptionChoices = map[string]bool{"": true, "auto": true, "tls": true, "pgp": true, "smime": true, "portal": true}

func (q sendRequest) toRequest(field string) (messages.Request, *Problem) {
	if !encryptionChoices[q.Encryption] {
		return messages.Request{}, NewProblem(TypeValidation, "encryption must be auto, tls, pgp, smime or portal").
			WithErrors(FieldError{Field: field + "encryption", Message: "unknown method"})
	}
	req := messages.Request{From: q.From, To: q.To, Cc: q.Cc, Bcc: q.Bcc, ReplyTo: q.ReplyTo, Subject: q.Subject, Text: q.Text,
		HTML: q.HTML, Headers: q.Headers, Tags: q.Tags, Metadata: q.Metadata, Kind: q.Kind, Encryption: q.Encryption, Tracking: q.Tracking,
		Template: q.TemplateID, TemplateVersion: q.TemplateVersion, TemplateData: q.TemplateData, RecipientData: q.RecipientData}
	if q.SendAt != nil {
		req.SendAt = *q.SendAt
	}
	for _, a := range q.Attachments {
		req.Attachments = append(req.Attachments, messages.Attachment{Filename: a.Filename, ContentType: a.ContentType,
			Content: a.Content, ContentID: a.ContentID})
	}
	return req, nil
}

func (s *Server) messageRoutes() {
	s.HandleScoped("POST /v1/messages", auth.ScopeMessagesSend, http.HandlerFunc(s.sendMessage))
	s.HandleScoped("POST /v1/messages/batch", auth.ScopeMessagesSend, http.HandlerFunc(s.sendBatch))
	s.HandleScoped("GET /v1/messages", auth.ScopeMessagesRead, http.HandlerFunc(s.listMessages))
	s.HandleScoped("GET /v1/messages/{message_id}", auth.ScopeMessagesRead, http.HandlerFunc(s.getMessage))
	s.HandleScoped("DELETE /v1/messages/{message_id}", auth.ScopeMessagesSend, http.HandlerFunc(s.cancelMessage))
	s.HandleScoped("PATCH /v1/messages/{message_id}", auth.ScopeMessagesSend, http.HandlerFunc(s.rescheduleMessage))
	s.reportRoutes()
	s.HandleScoped("GET /v1/suppressions", auth.ScopeMessagesRead, http.HandlerFunc(s.listSuppressions))
	s.HandleScoped("POST /v1/suppressions", auth.ScopeMessagesSend, http.HandlerFunc(s.addSuppression))
	s.HandleScoped("DELETE /v1/suppressions/{address}", auth.ScopeMessagesSend, http.HandlerFunc(s.removeSuppression))
}

// maxIdempotencyKey bounds the Idempotency-Key header.
const maxIdempotencyKey = 255

func (s *Server) sendMessage(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Idempotency-Key")
	if len(key) > maxIdempotencyKey || strings.ContainsFunc(key, func(c rune) bool { return c < 0x21 || c > 0x7e }) {
		writeProblem(w, r, NewProblem(TypeBadRequest, "Idempotency-Key must be 1 to 255 visible ASCII characters"))
		return
	}
	var q sendRequest
	if err := decodeJSON(r, &q); err != nil {
		s.writeError(w, r, err)
		return
	}
	req, p := q.toRequest("")
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	acc, err := s.opts.Messages.Send(r.Context(), actor(r), req, key)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/messages/"+acc.ID)
	s.writeJSON(w, r, http.StatusAccepted, acc)
}

// batchItem is one entry of the sendBatch answer: the accepted message or
// the problem that refused it.
type batchItem struct {
	Status  int                `json:"status"`
	Message *messages.Accepted `json:"message,omitempty"`
	Error   *Problem           `json:"error,omitempty"`
}

func (s *Server) sendBatch(w http.ResponseWriter, r *http.Request) {
	var q struct {
		Messages []sendRequest `json:"messages"`
	}
	if err := decodeJSON(r, &q); err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(q.Messages) == 0 || len(q.Messages) > messages.MaxBatch {
		writeProblem(w, r, NewProblem(TypeValidation, "a batch holds 1 to 1000 messages").
			WithErrors(FieldError{Field: "messages", Message: "1 to 1000 items"}))
		return
	}
	items := make([]batchItem, len(q.Messages))
	var reqs []messages.Request
	var index []int
	for i, m := range q.Messages {
		req, p := m.toRequest("messages[" + strconv.Itoa(i) + "].")
		if p != nil {
			items[i] = batchItem{Status: p.Status, Error: p}
			continue
		}
		reqs, index = append(reqs, req), append(index, i)
	}
	results, err := s.opts.Messages.SendBatch(r.Context(), actor(r), reqs)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for j, res := range results {
		if res.Err != nil {
			p := problemFor(res.Err)
			items[index[j]] = batchItem{Status: p.Status, Error: p}
			continue
		}
		items[index[j]] = batchItem{Status: http.StatusAccepted, Message: res.Accepted}
	}
	s.writeJSON(w, r, http.StatusOK, struct {
		Data []batchItem `json:"data"`
	}{items})
}

func (s *Server) getMessage(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.FromContext(r.Context())
	m, err := s.opts.Messages.Get(r.Context(), p.AccountID, r.PathValue("message_id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, m)
}

func (s *Server) cancelMessage(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.FromContext(r.Context())
	id := r.PathValue("message_id")
	if _, err := s.opts.Messages.Get(r.Context(), p.AccountID, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	cancelled, err := s.opts.Messages.Cancel(r.Context(), p.AccountID, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !cancelled {
		writeProblem(w, r, NewProblem(TypeConflict, "no recipient of the message is still waiting to be sent"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listMessages(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.FromContext(r.Context())
	f, perr := parseMessageFilter(r.URL.Query())
	if perr != nil {
		writeProblem(w, r, perr)
		return
	}
	page, err := s.opts.Messages.List(r.Context(), p.AccountID, f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, pageOf(page.Messages, page.NextCursor))
}

func parseMessageFilter(q url.Values) (messages.Filter, *Problem) {
	var f messages.Filter
	bad := func(field, msg string) (messages.Filter, *Problem) {
		return messages.Filter{}, NewProblem(TypeBadRequest, "invalid query parameter "+field).WithErrors(FieldError{Field: field, Message: msg})
	}
	for name := range q {
		switch name {
		case "limit", "cursor", "tag", "since", "until", "state":
		default:
			return bad(truncate(name, maxEchoedFieldName), "unknown parameter")
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return bad("limit", "an integer from 1 to 500")
		}
		f.Limit = n
	}
	if v := q.Get("cursor"); len(v) > maxCursorLen {
		return bad("cursor", "invalid or expired cursor")
	}
	f.Cursor = q.Get("cursor")
	if v := q.Get("tag"); len(v) > 100 {
		return bad("tag", "at most 100 characters")
	}
	f.Tag = q.Get("tag")
	if v := q.Get("state"); v != "" && !slices.Contains(messages.States, v) {
		return bad("state", "one of "+strings.Join(messages.States, ", "))
	}
	f.State = q.Get("state")
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(t.name); v != "" {
			ts, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return bad(t.name, "an RFC 3339 date-time")
			}
			*t.dst = ts
		}
	}
	return f, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func (s *Server) listSuppressions(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.FromContext(r.Context())
	list, err := s.opts.Messages.Suppressions(r.Context(), p.AccountID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, listOf(list, func(x messages.Suppression) messages.Suppression { return x }))
}

func (s *Server) addSuppression(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.FromContext(r.Context())
	var q struct {
		Address string `json:"address"`
	}
	if err := decodeJSON(r, &q); err != nil {
		s.writeError(w, r, err)
		return
	}
	if pr := requireFields([2]string{"address", q.Address}); pr != nil {
		writeProblem(w, r, pr)
		return
	}
	sp, err := s.opts.Messages.AddSuppression(r.Context(), p.AccountID, q.Address)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusCreated, sp)
}

func (s *Server) removeSuppression(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.FromContext(r.Context())
	if err := s.opts.Messages.RemoveSuppression(r.Context(), p.AccountID, r.PathValue("address")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
