package templates

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sealpost/sealpost/internal/store"
)

// Errors callers branch on (a stored template of another account is
// ErrNotFound too). Invalid sources are *Error wrapping ErrSyntax.
var (
	ErrNotFound  = fmt.Errorf("templates: no such template or version: %w", store.ErrNotFound)
	ErrNameTaken = errors.New("templates: the account already has a template of this name")
	ErrBadCursor = errors.New("templates: invalid cursor")
	ErrInvalid   = errors.New("templates: invalid request")
)

// MaxVersions is the most versions one template keeps.
const MaxVersions = 1000

// Template is a stored template. Versions lists its versions, newest
// first, on Get (not on List).
type Template struct {
	ID               string    `json:"id"`
	Name             string    `json:"name"`
	MissingVariables Policy    `json:"missing_variables"`
	ActiveVersion    int       `json:"active_version"`
	LatestVersion    int       `json:"latest_version"`
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
	Versions         []Version `json:"versions,omitempty"`
}

// Version is one immutable version of a template.
type Version struct {
	Version   int       `json:"version"`
	Subject   string    `json:"subject"`
	Text      string    `json:"text"`
	HTML      string    `json:"html"`
	CreatedAt time.Time `json:"created_at"`
}

// NewTemplate is what Create needs.
type NewTemplate struct {
	Name             string
	MissingVariables Policy // default MissingError
	Content          Content
}

// Page is one page of List.
type Page struct {
	Templates  []Template
	NextCursor string
}

// Options configure the service.
type Options struct {
	Limits Limits
	Now    func() time.Time
}

// Service stores templates and renders them.
type Service struct {
	db   *store.Store
	opts Options
	mu   sync.Mutex
	// cache holds compiled versions (immutable, so never stale); it is
	// emptied when it reaches maxCached.
	cache map[versionKey]*Compiled
}

const maxCached = 2048

type versionKey struct {
	accountID, id string
	version       int
}

// New returns the service.
func New(db *store.Store, opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.Limits = opts.Limits.withDefaults()
	return &Service{db: db, opts: opts, cache: map[versionKey]*Compiled{}}
}

func validName(n string) bool {
	return n != "" && len(n) <= 100 && utf8.ValidString(n) && !strings.ContainsFunc(n, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// Create stores a template with its first version, active.
func (s *Service) Create(ctx context.Context, accountID string, nt NewTemplate) (Template, error) {
	if !validName(nt.Name) {
		return Template{}, &Error{Part: "name", Message: "1 to 100 printable characters", kind: ErrSyntax}
	}
	if nt.MissingVariables == "" {
		nt.MissingVariables = MissingError
	}
	if _, err := Compile(nt.Content, nt.MissingVariables, s.opts.Limits); err != nil {
		return Template{}, err
	}
	now := store.Micros(s.opts.Now())
	id := store.NewID()
	err := s.db.InTx(ctx, func(tx store.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO templates (id, account_id, name, missing_variables, active_version, latest_version,
			created_at, updated_at) VALUES ($1, $2, $3, $4, 1, 1, $5, $5)`, id, accountID, nt.Name, string(nt.MissingVariables), now); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return ErrNameTaken
			}
			return fmt.Errorf("store template: %w", err)
		}
		return insertVersion(ctx, tx, accountID, id, 1, nt.Content, now)
	})
	if err != nil {
		return Template{}, err
	}
	return s.Get(ctx, accountID, id)
}

func insertVersion(ctx context.Context, q store.Querier, accountID, id string, v int, c Content, now int64) error {
	_, err := q.Exec(ctx, `INSERT INTO template_versions (template_id, version, account_id, subject, text_body, html_body, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, id, v, accountID, c.Subject, c.Text, c.HTML, now)
	if err != nil {
		return fmt.Errorf("store template version: %w", err)
	}
	return nil
}

const templateColumns = "id, name, missing_variables, active_version, latest_version, created_at, updated_at"

func scanTemplate(row interface{ Scan(...any) error }) (Template, error) {
	var t Template
	var policy string
	var created, updated int64
	if err := row.Scan(&t.ID, &t.Name, &policy, &t.ActiveVersion, &t.LatestVersion, &created, &updated); err != nil {
		return Template{}, err
	}
	t.MissingVariables, t.CreatedAt, t.UpdatedAt = Policy(policy), store.FromMicros(created).UTC(), store.FromMicros(updated).UTC()
	return t, nil
}

// Get returns a template with its versions.
func (s *Service) Get(ctx context.Context, accountID, id string) (Template, error) {
	t, err := scanTemplate(s.db.Reader().QueryRow(ctx, "SELECT "+templateColumns+" FROM templates WHERE account_id = $1 AND id = $2", accountID, id))
	if errors.Is(err, store.ErrNotFound) {
		return Template{}, ErrNotFound
	}
	if err != nil {
		return Template{}, fmt.Errorf("get template: %w", err)
	}
	rows, err := s.db.Reader().Query(ctx, `SELECT version, subject, text_body, html_body, created_at FROM template_versions
		WHERE account_id = $1 AND template_id = $2 ORDER BY version DESC`, accountID, id)
	if err != nil {
		return Template{}, fmt.Errorf("get template versions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var v Version
		var created int64
		if err := rows.Scan(&v.Version, &v.Subject, &v.Text, &v.HTML, &created); err != nil {
			return Template{}, err
		}
		v.CreatedAt = store.FromMicros(created).UTC()
		t.Versions = append(t.Versions, v)
	}
	return t, rows.Err()
}

// List returns the account's templates, newest first, without versions.
func (s *Service) List(ctx context.Context, accountID string, limit int, cursor string) (Page, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	where, args := "account_id = $1", []any{accountID}
	if cursor != "" {
		created, id, ok := store.DecodeCursor(cursor)
		if !ok {
			return Page{}, ErrBadCursor
		}
		where += " AND (created_at < $2 OR (created_at = $2 AND id < $3))"
		args = append(args, created, id)
	}
	rows, err := s.db.Reader().Query(ctx, "SELECT "+templateColumns+" FROM templates WHERE "+where+
		" ORDER BY created_at DESC, id DESC LIMIT "+strconv.Itoa(limit+1), args...)
	if err != nil {
		return Page{}, fmt.Errorf("list templates: %w", err)
	}
	defer rows.Close()
	var page Page
	for rows.Next() {
		t, err := scanTemplate(rows)
		if err != nil {
			return Page{}, err
		}
		page.Templates = append(page.Templates, t)
	}
	if err := rows.Err(); err != nil {
		return Page{}, err
	}
	if len(page.Templates) > limit {
		page.Templates = page.Templates[:limit]
		last := page.Templates[limit-1]
		page.NextCursor = store.EncodeCursor(last.CreatedAt, last.ID)
	}
	return page, nil
}

// AddVersion stores a new version (the latest plus one), active when
// activate is set.
func (s *Service) AddVersion(ctx context.Context, accountID, id string, c Content, activate bool) (Template, error) {
	var policy string
	if err := s.db.Reader().QueryRow(ctx, "SELECT missing_variables FROM templates WHERE account_id = $1 AND id = $2",
		accountID, id).Scan(&policy); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Template{}, ErrNotFound
		}
		return Template{}, err
	}
	if _, err := Compile(c, Policy(policy), s.opts.Limits); err != nil {
		return Template{}, err
	}
	now := store.Micros(s.opts.Now())
	err := s.db.InTx(ctx, func(tx store.Tx) error {
		var latest int
		if err := tx.QueryRow(ctx, "SELECT latest_version FROM templates WHERE account_id = $1 AND id = $2", accountID, id).Scan(&latest); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return ErrNotFound
			}
			return err
		}
		if latest >= MaxVersions {
			return fmt.Errorf("%w: a template keeps at most %d versions", ErrInvalid, MaxVersions)
		}
		v := latest + 1
		active := "active_version"
		if activate {
			active = "$1"
		}
		// The latest_version guard makes concurrent additions conflict
		// rather than share a number.
		n, err := tx.Exec(ctx, "UPDATE templates SET latest_version = $1, active_version = "+active+
			", updated_at = $2 WHERE account_id = $3 AND id = $4 AND latest_version = $5", v, now, accountID, id, latest)
		if err != nil {
			return err
		}
		if n != 1 {
			return store.ErrConflict
		}
		return insertVersion(ctx, tx, accountID, id, v, c, now)
	})
	if err != nil {
		return Template{}, err
	}
	return s.Get(ctx, accountID, id)
}

// Activate makes version the one sends use by default.
func (s *Service) Activate(ctx context.Context, accountID, id string, version int) (Template, error) {
	n, err := s.db.Writer().Exec(ctx, `UPDATE templates SET active_version = $1, updated_at = $2 WHERE account_id = $3 AND id = $4
		AND EXISTS (SELECT 1 FROM template_versions WHERE account_id = $3 AND template_id = $4 AND version = $1)`,
		version, store.Micros(s.opts.Now()), accountID, id)
	if err != nil {
		return Template{}, fmt.Errorf("activate template version: %w", err)
	}
	if n != 1 {
		return Template{}, ErrNotFound
	}
	return s.Get(ctx, accountID, id)
}

// Delete removes a template and its versions. Messages already accepted
// keep what was rendered into them.
func (s *Service) Delete(ctx context.Context, accountID, id string) error {
	return s.db.InTx(ctx, func(tx store.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM template_versions WHERE account_id = $1 AND template_id = $2", accountID, id); err != nil {
			return err
		}
		n, err := tx.Exec(ctx, "DELETE FROM templates WHERE account_id = $1 AND id = $2", accountID, id)
		if err != nil {
			return err
		}
		if n != 1 {
			return ErrNotFound
		}
		return nil
	})
}

// Compiled returns a version ready to render: version 0 is the active
// one. Compiled versions are cached (a version never changes).
func (s *Service) Compiled(ctx context.Context, accountID, id string, version int) (*Compiled, int, error) {
	var policy string
	var active int
	if err := s.db.Reader().QueryRow(ctx, "SELECT missing_variables, active_version FROM templates WHERE account_id = $1 AND id = $2",
		accountID, id).Scan(&policy, &active); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, 0, ErrNotFound
		}
		return nil, 0, fmt.Errorf("load template: %w", err)
	}
	if version == 0 {
		version = active
	}
	key := versionKey{accountID, id, version}
	s.mu.Lock()
	c, ok := s.cache[key]
	s.mu.Unlock()
	if ok && c.policy == Policy(policy) {
		return c, version, nil
	}
	var src Content
	if err := s.db.Reader().QueryRow(ctx, `SELECT subject, text_body, html_body FROM template_versions
		WHERE account_id = $1 AND template_id = $2 AND version = $3`, accountID, id, version).Scan(&src.Subject, &src.Text, &src.HTML); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, 0, ErrNotFound
		}
		return nil, 0, fmt.Errorf("load template version: %w", err)
	}
	cp, err := Compile(src, Policy(policy), s.opts.Limits)
	if err != nil {
		return nil, 0, err
	}
	s.mu.Lock()
	if len(s.cache) >= maxCached {
		clear(s.cache)
	}
	s.cache[key] = cp
	s.mu.Unlock()
	return cp, version, nil
}

// Render renders a version (0: the active one) with data.
func (s *Service) Render(ctx context.Context, accountID, id string, version int, data map[string]any) (Rendered, error) {
	cp, _, err := s.Compiled(ctx, accountID, id, version)
	if err != nil {
		return Rendered{}, err
	}
	return cp.Render(ctx, data)
}
