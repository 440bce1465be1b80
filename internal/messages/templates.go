package messages

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/sealpost/sealpost/internal/mail"
	"github.com/sealpost/sealpost/internal/templates"
)

// Templates is the stored-template source sends render from (package
// templates).
type Templates interface {
	Compiled(ctx context.Context, accountID, id string, version int) (*templates.Compiled, int, error)
}

// ErrUnknownTemplate: the request names a template (or version) the
// account does not have.
var ErrUnknownTemplate = errors.New("messages: no such template or template version in this account")

// TemplateError is a template that failed to render for a message: for
// all recipients (Recipient empty) or for the recipient named by field
// path (such as "to[1]").
type TemplateError struct {
	Recipient string
	Err       *templates.Error
}

func (e *TemplateError) Error() string {
	if e.Recipient == "" {
		return "template: " + e.Err.Error()
	}
	return "template for " + e.Recipient + ": " + e.Err.Error()
}

func (e *TemplateError) Unwrap() error { return e.Err }

// personal is how a message's content is personalised: the compiled
// template, the data shared by all recipients and each recipient's own
// (keyed by lower-case address), merged over the shared data.
type personal struct {
	tmpl    *templates.Compiled
	shared  map[string]any
	perRcpt map[string]map[string]any
}

// applyTemplate renders req's template into d and returns how recipients
// are personalised, or nil when the request names no template. With
// per-recipient data, d gets the first recipient's content (each
// recipient's own body is rendered by draftFor); else the shared data's.
func (s *Service) applyTemplate(ctx context.Context, accountID string, req Request, rcpts []recipient, d *mail.Draft) (*personal, error) {
	if req.Template == "" {
		switch {
		case req.TemplateVersion != 0:
			return nil, &mail.FieldError{Field: "template_version", Message: "only with template_id"}
		case req.TemplateData != nil:
			return nil, &mail.FieldError{Field: "template_data", Message: "only with template_id"}
		case req.RecipientData != nil:
			return nil, &mail.FieldError{Field: "recipient_data", Message: "only with template_id"}
		}
		return nil, nil
	}
	for _, f := range []struct{ name, v string }{{"subject", req.Subject}, {"text", req.Text}, {"html", req.HTML}} {
		if f.v != "" {
			return nil, &mail.FieldError{Field: f.name, Message: "not allowed with template_id: the template gives the content"}
		}
	}
	if req.TemplateVersion < 0 {
		return nil, &mail.FieldError{Field: "template_version", Message: "a version number from 1"}
	}
	if s.opts.Templates == nil {
		return nil, ErrUnknownTemplate
	}
	cp, _, err := s.opts.Templates.Compiled(ctx, accountID, req.Template, req.TemplateVersion)
	if errors.Is(err, templates.ErrNotFound) {
		return nil, ErrUnknownTemplate
	}
	if err != nil {
		return nil, err
	}
	p := &personal{tmpl: cp, shared: req.TemplateData, perRcpt: map[string]map[string]any{}}
	for addr, data := range req.RecipientData {
		p.perRcpt[strings.ToLower(addr)] = data
	}
	if err := p.checkRecipientData(rcpts); err != nil {
		return nil, err
	}
	if len(p.perRcpt) > 0 && len(rcpts) > 0 {
		return p, p.render(ctx, rcpts[0], d)
	}
	out, err := cp.Render(ctx, p.shared)
	if err != nil {
		return nil, templateError("", err)
	}
	d.Subject, d.Text, d.HTML = out.Subject, out.Text, out.HTML
	return p, nil
}

// checkRecipientData refuses recipient_data keyed by an address that is
// not a recipient of the message (the key is not echoed: it may be PHI).
func (p *personal) checkRecipientData(rcpts []recipient) error {
	if p == nil || len(p.perRcpt) == 0 {
		return nil
	}
	known := make(map[string]bool, len(rcpts))
	for _, r := range rcpts {
		known[strings.ToLower(r.addr.Addr())] = true
	}
	for addr := range p.perRcpt {
		if !known[addr] {
			return &mail.FieldError{Field: "recipient_data", Message: "every key must be an address in to, cc or bcc"}
		}
	}
	return nil
}

// render renders the template for one recipient into d: its own data
// (if any) merged over the shared data.
func (p *personal) render(ctx context.Context, r recipient, d *mail.Draft) error {
	own := p.perRcpt[strings.ToLower(r.addr.Addr())]
	data := make(map[string]any, len(p.shared)+len(own))
	maps.Copy(data, p.shared)
	maps.Copy(data, own)
	out, err := p.tmpl.Render(ctx, data)
	if err != nil {
		return templateError(fmt.Sprintf("%s[%d]", r.kind, r.kindIndex), err)
	}
	d.Subject, d.Text, d.HTML = out.Subject, out.Text, out.HTML
	return nil
}

func templateError(field string, err error) error {
	var te *templates.Error
	if errors.As(err, &te) {
		return &TemplateError{Recipient: field, Err: te}
	}
	return fmt.Errorf("render template: %w", err)
}

// isTemplateRefusal reports whether err refuses the request's template
// use (rather than being the server's failure).
func isTemplateRefusal(err error) bool {
	var te *TemplateError
	return errors.Is(err, ErrUnknownTemplate) || errors.As(err, &te)
}
